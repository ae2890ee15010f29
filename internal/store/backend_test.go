package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib"
	"go.uber.org/goleak"

	"github.com/routr-go/routr/internal/resources"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testKey is the encryption key tests open stores with.
var testKey = make([]byte, KeySize)

// backend makes databases of one kind for tests.
type backend struct {
	name string
	// newURL returns the URL of a new, empty database, dropped when the
	// test ends.
	newURL func(t *testing.T) string
}

// postgresBase is the server tests create their databases on:
// ROUTR_TEST_POSTGRES, else the machine's PostgreSQL.
func postgresBase() string {
	if u := os.Getenv("ROUTR_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// backends returns SQLite and, when reachable, PostgreSQL. An unreachable
// PostgreSQL fails the test in CI (CI is set) and skips it elsewhere.
func backends(t *testing.T) []backend {
	t.Helper()
	bs := []backend{{name: "sqlite", newURL: func(t *testing.T) string {
		return "sqlite:" + filepath.Join(t.TempDir(), "routr.db")
	}}}
	if err := pingPostgres(); err != nil {
		if os.Getenv("ROUTR_REQUIRE_POSTGRES") != "" || os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL at %s unreachable in CI: %v", redactURL(postgresBase()), err)
		}
		return append(bs, backend{name: "postgres", newURL: func(t *testing.T) string {
			t.Skipf("PostgreSQL at %s unreachable (%v); set ROUTR_TEST_POSTGRES", redactURL(postgresBase()), err)
			return ""
		}})
	}
	return append(bs, backend{name: "postgres", newURL: newPostgresDB})
}

func redactURL(u string) string { return redact(fmt.Errorf("%s", u), u).Error() }

func pingPostgres() error {
	ctx := context.Background()
	c, err := pgx.Connect(ctx, postgresBase())
	if err != nil {
		return err
	}
	return c.Close(ctx)
}

// newPostgresDB creates a uniquely named database and drops it after t.
func newPostgresDB(t *testing.T) string { return newPostgresDBB(t) }

func newPostgresDBB(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "routr_test_" + hex.EncodeToString(b)
	admin, err := sql.Open("pgx", postgresBase())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", postgresBase())
		if err != nil {
			t.Error(err)
			return
		}
		defer admin.Close()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	conf, err := pgx.ParseConfig(postgresBase())
	if err != nil {
		t.Fatal(err)
	}
	u := fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", conf.User, conf.Host, conf.Port, name)
	if conf.Password != "" {
		u = fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=disable", conf.User, conf.Password, conf.Host, conf.Port, name)
	}
	return u
}

// forEach runs f as a subtest against every backend, on a fresh database.
func forEach(t *testing.T, f func(t *testing.T, url string)) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) { f(t, b.newURL(t)) })
	}
}

// open opens url with the test key; closed after t.
func open(t *testing.T, url string, seed ...resources.Resource) *DB {
	t.Helper()
	db, err := Open(context.Background(), Options{URL: url, Key: testKey, Seed: seed})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// examples returns the shipped example resources.
func examples(t testing.TB) []resources.Resource {
	t.Helper()
	files, _ := filepath.Glob("../../config/resources/*")
	var all []resources.Resource
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := resources.Parse(name, data)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, rs...)
	}
	return all
}
