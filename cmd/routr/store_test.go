package main

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/routr-go/routr/internal/config"
	"github.com/routr-go/routr/internal/resources"
	"github.com/routr-go/routr/internal/store"
)

func loadCfg(t *testing.T, env map[string]string) *config.Config {
	t.Helper()
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// inExampleDir runs the test in a directory holding a copy of the shipped
// example resources, as a user's checkout does.
func inExampleDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("cp", "-r", "../../config", dir).CombinedOutput(); err != nil {
		t.Fatalf("copy config: %v %s", err, out)
	}
	t.Chdir(dir)
	return dir
}

// With nothing set, the edge creates the embedded database, seeds it from
// the examples, and keeps a generated key beside it.
func TestDefaultEmbeddedDatabase(t *testing.T) {
	dir := inExampleDir(t)
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	cfg := loadCfg(t, nil)

	// check before the first start: the seed is checked, nothing created.
	set, what, err := checkResources(ctx, cfg)
	if err != nil || len(set.Agents()) != 3 || !strings.Contains(what, "seeds the new database") {
		t.Fatalf("check before start: %v %q %v", set, what, err)
	}
	if _, err := os.Stat(filepath.Join(dir, config.DefaultDatabasePath)); !os.IsNotExist(err) {
		t.Fatalf("check created the database: %v", err)
	}

	src, err := openResources(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if src.DB == nil || src.Holder.Load().Agent("domain-01", "1001") == nil {
		t.Fatalf("default source %+v lacks the seeded agent", src)
	}
	if fi, err := os.Stat(filepath.Join(dir, config.DefaultDatabasePath)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("database file: %v %v, want mode 0600", fi, err)
	}
	keyPath := filepath.Join(dir, config.DefaultDatabasePath+".key")

	fi, err := os.Stat(keyPath)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	// A write shows in the Holder the edge reads.
	if _, err := src.DB.Create(ctx, &resources.Credentials{Base: resources.Base{APIVersion: "v2", Ref: "c-new"}, Username: "u", Password: "p"}); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { src.Run(runCtx); close(done) }()
	if _, err := src.DB.Create(ctx, &resources.Credentials{Base: resources.Base{APIVersion: "v2", Ref: "c-new2"}, Username: "u2", Password: "p"}); err != nil {
		t.Fatal(err)
	}
	for src.Holder.Load().Credentials("c-new2") == nil {
		select {
		case <-done:
			t.Fatal("Run returned")
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	<-done
	src.Close()

	// A restart reuses the database and its key; check reads the database.
	set, what, err = checkResources(ctx, cfg)
	if err != nil || set.Credentials("c-new2") == nil || what != "sqlite:"+config.DefaultDatabasePath {
		t.Fatalf("check after start: %q %v", what, err)
	}
	// Without its key file the database is refused, with the reason.
	if err := os.Remove(keyPath); err != nil {
		t.Fatal(err)
	}
	if _, err := openResources(ctx, cfg, log); err == nil || !strings.Contains(err.Error(), "key file") {
		t.Errorf("open without the key file: %v", err)
	}
	// With the wrong key, likewise.
	cfg.Storage.EncryptionKey = store.NewKey()
	if _, err := openResources(ctx, cfg, log); err == nil || !strings.Contains(err.Error(), "encryption key does not match") {
		t.Errorf("open with another key: %v", err)
	}
}

func TestStorageModes(t *testing.T) {
	inExampleDir(t)
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)

	// PATH_TO_RESOURCES alone: the read-only files mode, no database.
	src, err := openResources(ctx, loadCfg(t, map[string]string{"PATH_TO_RESOURCES": "config/resources"}), log)
	if err != nil || src.DB != nil || src.Holder.Load().Agent("domain-01", "1001") == nil {
		t.Fatalf("files mode: %+v %v", src, err)
	}
	if _, err := os.Stat(config.DefaultDatabasePath); !os.IsNotExist(err) {
		t.Errorf("files mode created a database: %v", err)
	}

	// PostgreSQL needs ENCRYPTION_KEY, and says so before connecting.
	_, err = openResources(ctx, loadCfg(t, map[string]string{"DATABASE_URL": "postgres://routr:pw@127.0.0.1:1/routr"}), log)
	if err == nil || !strings.Contains(err.Error(), "ENCRYPTION_KEY is required") {
		t.Errorf("postgres without a key: %v", err)
	}
	_, err = openResources(ctx, loadCfg(t, map[string]string{"DATABASE_URL": "sqlite:x.db", "ENCRYPTION_KEY": "short"}), log)
	if err == nil || !strings.Contains(err.Error(), "ENCRYPTION_KEY") {
		t.Errorf("bad key: %v", err)
	}

	// DATABASE_URL alone: an empty database stays empty.
	key := store.NewKey()
	src, err = openResources(ctx, loadCfg(t, map[string]string{"DATABASE_URL": "sqlite:empty.db", "ENCRYPTION_KEY": key}), log)
	if err != nil || len(src.Holder.Load().All()) != 0 {
		t.Fatalf("empty database: %v", err)
	}
	src.Close()
	// With PATH_TO_RESOURCES too, a new database is seeded from it: the
	// one-command move from files to a database.
	src, err = openResources(ctx, loadCfg(t, map[string]string{"DATABASE_URL": "moved.db", "ENCRYPTION_KEY": key, "PATH_TO_RESOURCES": "config/resources"}), log)
	if err != nil || src.Holder.Load().Agent("domain-01", "1002") == nil {
		t.Fatalf("seeded from PATH_TO_RESOURCES: %v", err)
	}
	src.Close()

	// check on a DATABASE_URL file that does not exist does not create it.
	if _, _, err := checkResources(ctx, loadCfg(t, map[string]string{"DATABASE_URL": "sqlite:nope.db", "ENCRYPTION_KEY": key})); err == nil {
		t.Error("check on a missing database succeeded")
	}
	if _, err := os.Stat("nope.db"); !os.IsNotExist(err) {
		t.Errorf("check created the database: %v", err)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://routr:s3cret@db:5432/routr": "postgres://routr:xxxxx@db:5432/routr",
		"postgres://routr@db/routr":             "postgres://routr@db/routr",
		"sqlite:data/routr.db":                  "sqlite:data/routr.db",
		"postgres://u:p%zz@db/x":                "postgres://(unparsable URL)",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
