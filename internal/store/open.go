package store

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/routr-go/routr/internal/resources"
)

// Options configures Open.
type Options struct {
	// URL selects the database: "postgres://…" or "postgresql://…" for
	// PostgreSQL (as Routr's DATABASE_URL), "sqlite:<path>" or a plain
	// file path for the embedded database (created if absent).
	URL string
	// Key encrypts Credentials' passwords at rest (AES-256-GCM); it must
	// be 32 bytes (see ParseKey). Open refuses a database whose data was
	// encrypted with another key.
	Key []byte
	// Seed is stored when Open creates the database (no resources and
	// revision 0), so that a fresh embedded database starts usable.
	Seed []resources.Resource
	// PollInterval is how often Watch checks the revision when it gets no
	// notification; 0 means 2s.
	PollInterval time.Duration
	// Logger receives the store's logs; nil means slog.Default().
	Logger *slog.Logger
}

// DB is a Store on SQLite or PostgreSQL.
type DB struct {
	opts Options
}

var _ Store = (*DB)(nil)

var errTODO = errors.New("store: not implemented yet")

// Open connects to (or creates) the database in o.URL, applies pending
// migrations, checks o.Key against the stored data and seeds an empty
// database with o.Seed.
func Open(ctx context.Context, o Options) (*DB, error) { return nil, errTODO }

// Watch keeps h holding the current Snapshot until ctx ends: it stores a
// new Set whenever the revision changes, whichever instance wrote it
// (PostgreSQL notifications, else polling every PollInterval). It loads
// the current snapshot first and returns its error if that fails; later
// failures are logged and retried. It returns nil when ctx ends.
func (db *DB) Watch(ctx context.Context, h *resources.Holder) error { return errTODO }

// Snapshot implements Store.
func (db *DB) Snapshot(ctx context.Context) (*resources.Set, uint64, error) { return nil, 0, errTODO }

// Revision implements Store.
func (db *DB) Revision(ctx context.Context) (uint64, error) { return 0, errTODO }

// Get implements Store.
func (db *DB) Get(ctx context.Context, kind resources.Kind, ref string) (Record, error) {
	return Record{}, errTODO
}

// List implements Store.
func (db *DB) List(ctx context.Context, kind resources.Kind, pageSize int, pageToken string) ([]Record, string, error) {
	return nil, "", errTODO
}

// Create implements Store.
func (db *DB) Create(ctx context.Context, r resources.Resource) (Record, error) {
	return Record{}, errTODO
}

// Update implements Store.
func (db *DB) Update(ctx context.Context, r resources.Resource) (Record, error) {
	return Record{}, errTODO
}

// Delete implements Store.
func (db *DB) Delete(ctx context.Context, kind resources.Kind, ref string) error { return errTODO }

// CreateAPIKey implements Store.
func (db *DB) CreateAPIKey(ctx context.Context, name string) (string, APIKey, error) {
	return "", APIKey{}, errTODO
}

// RevokeAPIKey implements Store.
func (db *DB) RevokeAPIKey(ctx context.Context, id string) error { return errTODO }

// ListAPIKeys implements Store.
func (db *DB) ListAPIKeys(ctx context.Context) ([]APIKey, error) { return nil, errTODO }

// CheckAPIKey implements Store.
func (db *DB) CheckAPIKey(ctx context.Context, plaintext string) (APIKey, error) {
	return APIKey{}, errTODO
}

// Close implements Store.
func (db *DB) Close() error { return nil }

// ParseKey decodes an encryption key setting: 64 hex digits or standard
// base64 of 32 bytes.
func ParseKey(s string) ([]byte, error) { return nil, errTODO }
