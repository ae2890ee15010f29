package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/routr-go/routr/internal/config"
	"github.com/routr-go/routr/internal/resources"
	"github.com/routr-go/routr/internal/store"
)

// resourceSource is where the edge's resources come from: files read once
// (read-only), or a database watched for changes.
type resourceSource struct {
	// Holder is what the edge reads resources from.
	Holder *resources.Holder
	// DB is the database; nil in files mode.
	DB *store.DB
	// Desc names the source in logs ("config/resources", "sqlite:data/routr.db").
	Desc string
	log  *slog.Logger
}

// openResources opens the source cfg.Storage selects: files, the database
// in DATABASE_URL, or the default embedded database (created and seeded
// from cfg.ResourcesPath on first start).
func openResources(ctx context.Context, cfg *config.Config, log *slog.Logger) (*resourceSource, error) {
	// Loading makes garbage several times the size of what it keeps
	// (the YAML trees of 100,000 agents with credentials: ~650 MB), which
	// the heap would otherwise hold until its first collections under
	// traffic, and the runtime give back to the system slowly after
	// them: collect it and give it back at once.
	defer debug.FreeOSMemory()
	st := cfg.Storage
	if st.Mode() == config.StorageFiles {
		set, err := resources.LoadDir(cfg.ResourcesPath)
		if err != nil {
			return nil, err
		}
		return &resourceSource{Holder: resources.NewHolder(set), Desc: cfg.ResourcesPath, log: log}, nil
	}
	db, err := openStore(ctx, cfg, log, true)
	if err != nil {
		return nil, err
	}
	set, rev, err := db.Snapshot(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	log.Info("resources from database", "database", redactURL(st.URL()), "revision", rev, "resources", len(set.All()))
	return &resourceSource{Holder: resources.NewHolder(set), DB: db, Desc: redactURL(st.URL()), log: log}, nil
}

// Run keeps Holder current until ctx ends (database modes only).
func (s *resourceSource) Run(ctx context.Context) {
	if s.DB == nil {
		return
	}
	if err := s.DB.Watch(ctx, s.Holder); err != nil && ctx.Err() == nil {
		s.log.Error("resources: watching the database stopped; changes need a restart", "error", err)
	}
}

// Register adds the database's metrics to reg (database modes only).
func (s *resourceSource) Register(reg prometheus.Registerer) {
	if s.DB != nil {
		reg.MustRegister(s.DB)
	}
}

// Close closes the database, if any.
func (s *resourceSource) Close() {
	if s.DB != nil {
		s.DB.Close()
	}
}

// openStore opens the database of cfg.Storage with its encryption key.
// With seed, a database found empty is seeded: from ResourcesPath in the
// default mode (if that directory exists), and when PATH_TO_RESOURCES is
// set beside DATABASE_URL.
func openStore(ctx context.Context, cfg *config.Config, log *slog.Logger, seed bool) (*store.DB, error) {
	st := cfg.Storage
	url := st.URL()
	key, err := encryptionKey(st)
	if err != nil {
		return nil, err
	}
	o := store.Options{URL: url, Key: key, Logger: log.With("component", "store")}
	if seed && (st.Mode() == config.StorageDefault || st.ResourcesPathSet) {
		set, err := resources.LoadDir(cfg.ResourcesPath)
		switch {
		case err == nil:
			o.Seed = set.All()
		case st.Mode() == config.StorageDefault && errors.Is(err, fs.ErrNotExist):
			log.Info("no example resources to seed a new database with", "path", cfg.ResourcesPath)
		default:
			return nil, fmt.Errorf("resources to seed the database with: %w", err)
		}
	}
	db, err := store.Open(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", redactURL(url), err)
	}
	return db, nil
}

// encryptionKey returns ENCRYPTION_KEY, or for the embedded database a key
// kept in a file beside it (<database>.key, created with the database).
func encryptionKey(st config.Storage) ([]byte, error) {
	if st.EncryptionKey != "" {
		k, err := store.ParseKey(st.EncryptionKey)
		if err != nil {
			return nil, fmt.Errorf("ENCRYPTION_KEY: %w", err)
		}
		return k, nil
	}
	url := st.URL()
	if store.IsPostgres(url) {
		return nil, errors.New("ENCRYPTION_KEY is required with a PostgreSQL DATABASE_URL: it encrypts Credentials' passwords (make one with: openssl rand -hex 32)")
	}
	dbPath := store.SQLitePath(url)
	keyPath := dbPath + ".key"
	data, err := os.ReadFile(keyPath)
	if err == nil {
		k, err := store.ParseKey(string(data))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", keyPath, err)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("encryption key: %w", err)
	}
	if _, err := os.Stat(dbPath); err == nil {
		return nil, fmt.Errorf("database %s exists but its key file %s does not: set ENCRYPTION_KEY to the key it was created with", dbPath, keyPath)
	}
	if err := os.MkdirAll(filepath.Dir(keyPath), 0o700); err != nil {
		return nil, fmt.Errorf("encryption key: %w", err)
	}
	k := store.NewKey()
	// O_EXCL: two instances starting at once on a new database must not
	// each write their own key.
	f, err := os.OpenFile(keyPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return encryptionKey(st)
	}
	if err != nil {
		return nil, fmt.Errorf("encryption key: %w", err)
	}
	_, err = f.WriteString(k + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("encryption key %s: %w", keyPath, err)
	}
	return store.ParseKey(k)
}

// redactURL hides the password of a database URL for logs.
func redactURL(u string) string { return store.Redact(u) }

// checkResources validates the resources of the configured source for
// `routr check`, without creating or changing a database: it names what
// it checked.
func checkResources(ctx context.Context, cfg *config.Config) (*resources.Set, string, error) {
	st := cfg.Storage
	switch st.Mode() {
	case config.StorageFiles:
		set, err := resources.LoadDir(cfg.ResourcesPath)
		return set, cfg.ResourcesPath, err
	case config.StorageDefault:
		if _, err := os.Stat(store.SQLitePath(st.URL())); errors.Is(err, fs.ErrNotExist) {
			// The database does not exist yet: check what would seed it.
			set, err := resources.LoadDir(cfg.ResourcesPath)
			return set, cfg.ResourcesPath + " (seeds the new database " + config.DefaultDatabasePath + ")", err
		}
	case config.StorageDatabase:
		if !store.IsPostgres(st.URL()) {
			if _, err := os.Stat(store.SQLitePath(st.URL())); err != nil {
				return nil, "", fmt.Errorf("DATABASE_URL: %w", err)
			}
		}
	}
	db, err := openStore(ctx, cfg, slog.New(slog.DiscardHandler), false)
	if err != nil {
		return nil, "", err
	}
	defer db.Close()
	set, _, err := db.Snapshot(ctx)
	return set, redactURL(st.URL()), err
}
