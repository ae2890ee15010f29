package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/routr-go/routr/internal/resources"
)

// Options configures Open.
type Options struct {
	// URL selects the database: "postgres://…" or "postgresql://…" for
	// PostgreSQL (as Routr's DATABASE_URL; a Prisma-style ?schema=name
	// sets the search_path), "sqlite:<path>" or a plain file path for the
	// embedded database (created, with its directory, if absent).
	URL string
	// Key encrypts Credentials' passwords at rest (AES-256-GCM); it must
	// be KeySize bytes (see ParseKey). Open refuses a database whose data
	// was sealed with another key.
	Key []byte
	// Seed is stored when Open finds the database empty (revision 0), so
	// that a fresh embedded database starts usable.
	Seed []resources.Resource
	// PollInterval is how often Watch checks the revision besides
	// notifications; 0 means 2s.
	PollInterval time.Duration
	// Logger receives the store's logs; nil means slog.Default().
	Logger *slog.Logger
}

// DB is a Store on SQLite or PostgreSQL.
type DB struct {
	opts   Options
	log    *slog.Logger
	d      *dialect
	w      *sql.DB         // writes (SQLite: BEGIN IMMEDIATE)
	r      *sql.DB         // reads (the same as w on PostgreSQL)
	pgConf *pgx.ConnConfig // PostgreSQL: for the LISTEN connection
	schema string          // PostgreSQL: the schema DATABASE_URL names, if any
	seal   *sealer

	closeOnce sync.Once
	done      chan struct{}

	mu       sync.Mutex
	watchers map[*watcher]struct{}

	// cache holds decoded rows by ref (see decodeAll); its resources are
	// never modified.
	cacheMu sync.Mutex
	cache   map[string]cached

	metrics metrics
}

var _ Store = (*DB)(nil)

// Connection pool bounds.
const (
	maxPostgresConns = 16
	maxSQLiteReaders = 8
)

// dialect holds what differs between the backends.
type dialect struct {
	name string
	// numbered rewrites ? placeholders as $1, $2, … (PostgreSQL).
	numbered bool
	// lockMeta reads the revision, locking it for the rest of the
	// transaction on PostgreSQL (SQLite transactions already hold the
	// database's write lock from BEGIN IMMEDIATE).
	lockMeta string
}

var (
	sqliteDialect   = &dialect{name: "sqlite", lockMeta: "SELECT revision FROM store_meta WHERE id = 1"}
	postgresDialect = &dialect{name: "postgres", numbered: true, lockMeta: "SELECT revision FROM store_meta WHERE id = 1 FOR UPDATE"}
)

// q adapts a query written with ? placeholders to the dialect.
func (d *dialect) q(query string) string {
	if !d.numbered {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// IsPostgres reports whether url names a PostgreSQL database.
func IsPostgres(url string) bool {
	return strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://")
}

// SQLitePath returns the file an embedded database URL names: the part
// after "sqlite:" (and an optional "//"), or url itself.
func SQLitePath(url string) string {
	p, ok := strings.CutPrefix(url, "sqlite:")
	if ok {
		p = strings.TrimPrefix(p, "//")
	}
	return p
}

// Open connects to (or creates) the database in o.URL, applies pending
// migrations, checks o.Key against the stored data and seeds an empty
// database with o.Seed.
func Open(ctx context.Context, o Options) (*DB, error) {
	if o.PollInterval <= 0 {
		o.PollInterval = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if len(o.Key) == 0 {
		return nil, errors.New("store: an encryption key is required for Credentials' passwords (ENCRYPTION_KEY)")
	}
	seal, err := newSealer(o.Key)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	db := &DB{opts: o, log: o.Logger, seal: seal, done: make(chan struct{}), watchers: make(map[*watcher]struct{})}
	if IsPostgres(o.URL) {
		err = db.openPostgres(o.URL)
	} else {
		err = db.openSQLite(SQLitePath(o.URL))
	}
	if err != nil {
		return nil, err
	}
	if err := db.init(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func (db *DB) openPostgres(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("store: DATABASE_URL: %w", redact(err, rawURL))
	}
	// Prisma (which Routr uses) takes ?schema=name; PostgreSQL knows it as
	// the search_path.
	q := u.Query()
	if s := q.Get("schema"); s != "" {
		q.Del("schema")
		q.Set("search_path", s)
		u.RawQuery = q.Encode()
		db.schema = s
	}
	conf, err := pgx.ParseConfig(u.String())
	if err != nil {
		return fmt.Errorf("store: DATABASE_URL: %w", redact(err, rawURL))
	}
	db.d = postgresDialect
	db.pgConf = conf
	db.w = stdlib.OpenDB(*conf)
	db.w.SetMaxOpenConns(maxPostgresConns)
	db.r = db.w
	return nil
}

// redact keeps a password in the URL out of error messages.
func redact(err error, rawURL string) error {
	u, perr := url.Parse(rawURL)
	if perr != nil || u.User == nil {
		return err
	}
	if p, ok := u.User.Password(); ok && p != "" {
		return errors.New(strings.ReplaceAll(err.Error(), p, "xxxxx"))
	}
	return err
}

func (db *DB) openSQLite(path string) error {
	if path == "" {
		return errors.New("store: empty SQLite database path")
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	}
	// Create the file private: it holds sealed passwords and API key
	// hashes (SQLite gives its -wal and -shm files the same mode).
	if f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	}
	// WAL lets the readers (Snapshot, Get, the watcher's polls) run beside
	// a writer; busy_timeout makes writers of other processes wait for
	// the lock rather than fail.
	base := "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	w, err := sql.Open("sqlite", base+"&_txlock=immediate")
	if err != nil {
		return fmt.Errorf("store: open %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", base)
	if err != nil {
		w.Close()
		return fmt.Errorf("store: open %s: %w", path, err)
	}
	// One writer connection: SQLite takes one writer at a time anyway, and
	// writers of this process then queue in the pool instead of polling
	// the file lock.
	w.SetMaxOpenConns(1)
	r.SetMaxOpenConns(maxSQLiteReaders)
	db.d, db.w, db.r = sqliteDialect, w, r
	return nil
}

// init migrates the schema, checks the key and seeds an empty database.
func (db *DB) init(ctx context.Context) error {
	if err := db.migrate(ctx); err != nil {
		return err
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return db.wrap("begin", err)
	}
	defer tx.Rollback()
	var rev int64
	var check []byte
	if err := tx.QueryRowContext(ctx, db.d.q(db.d.lockMeta+"")).Scan(&rev); err != nil {
		return db.wrap("read revision", err)
	}
	if err := tx.QueryRowContext(ctx, "SELECT key_check FROM store_meta WHERE id = 1").Scan(&check); err != nil {
		return db.wrap("read key check", err)
	}
	if check == nil {
		if _, err := tx.ExecContext(ctx, db.d.q("UPDATE store_meta SET key_check = ? WHERE id = 1"), db.seal.seal(keyCheck, "key-check")); err != nil {
			return db.wrap("store key check", err)
		}
	} else if v, err := db.seal.open(check, "key-check"); err != nil || v != keyCheck {
		return errors.New("store: the encryption key does not match the one this database's passwords were encrypted with (ENCRYPTION_KEY)")
	}
	if err := tx.Commit(); err != nil {
		return db.wrap("commit", err)
	}
	if rev == 0 && len(db.opts.Seed) > 0 {
		return db.seed(ctx)
	}
	return nil
}

// wrap adds the backend and an action to a database error.
func (db *DB) wrap(action string, err error) error {
	return fmt.Errorf("store (%s): %s: %w", db.d.name, action, err)
}

// Close implements Store.
func (db *DB) Close() error {
	var err error
	db.closeOnce.Do(func() {
		close(db.done)
		err = db.w.Close()
		if db.r != db.w {
			err = errors.Join(err, db.r.Close())
		}
	})
	return err
}

// Redact returns a database URL with its password, if any, replaced, for
// logs and messages.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		if scheme, _, ok := strings.Cut(rawURL, "://"); ok {
			return scheme + "://(unparsable URL)"
		}
		return rawURL
	}
	if u.User == nil {
		return rawURL
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
