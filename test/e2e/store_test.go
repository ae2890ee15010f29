package e2e

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/routr-go/routr/internal/resources"
	"github.com/routr-go/routr/internal/siptest"
	"github.com/routr-go/routr/internal/store"
)

// testPostgres is the server e2e tests make databases on.
func testPostgres() string {
	if u := os.Getenv("ROUTR_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// newPostgresDB creates a database for t and drops it afterwards; it skips
// t when PostgreSQL is unreachable outside CI.
func newPostgresDB(t *testing.T) string {
	t.Helper()
	admin, err := sql.Open("pgx", testPostgres())
	if err == nil {
		err = admin.Ping()
	}
	if err != nil {
		if os.Getenv("ROUTR_REQUIRE_POSTGRES") != "" || os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL unreachable in CI: %v", err)
		}
		t.Skipf("PostgreSQL unreachable (%v); set ROUTR_TEST_POSTGRES", err)
	}
	defer admin.Close()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "routr_e2e_" + hex.EncodeToString(b)
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", testPostgres())
		if err != nil {
			t.Error(err)
			return
		}
		defer admin.Close()
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	u, err := url.Parse(testPostgres())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// eventually retries f until it returns nil or 20s pass (a bound for a
// stuck test; the edge polls an SQLite database every 2s).
func eventually(t *testing.T, e *edge, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v\nedge log:\n%s", what, err, e.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Resources written to the database by another process take effect on
// the edge's next SIP request, without a restart, on both backends.
func TestDatabaseChangesWithoutRestart(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var dbURL string
			if backend == "sqlite" {
				dbURL = "sqlite:" + filepath.Join(t.TempDir(), "routr.db")
			} else {
				dbURL = newPostgresDB(t)
			}
			key := store.NewKey()
			// startEdge also sets PATH_TO_RESOURCES: the new database is
			// seeded from the shipped examples.
			// The test retries REGISTERs that fail until a change arrives:
			// the flood guard's per-user failure ban is off.
			e := startEdge(t, "DATABASE_URL="+dbURL, "ENCRYPTION_KEY="+key, "GUARD_MAX_AUTH_FAILURES=0")
			addr := fmt.Sprintf("127.0.0.1:%d", e.sipPort)
			// One phone per user and password, so that retries refresh one
			// binding instead of adding contacts.
			phones := map[string]*siptest.Phone{}
			register := func(user, password string) error {
				p := phones[user+":"+password]
				if p == nil {
					var err error
					if p, err = siptest.NewPhone("udp", user, "sip.local", password, addr); err != nil {
						return err
					}
					t.Cleanup(p.Close)
					phones[user+":"+password] = p
				}
				res, err := p.Register(60, "MD5")
				if err != nil {
					return err
				}
				if res.StatusCode != 200 {
					return fmt.Errorf("REGISTER %s: %d %s", user, res.StatusCode, res.Reason)
				}
				return nil
			}
			refused := func(user, password string) func() error {
				return func() error {
					if register(user, password) == nil {
						return fmt.Errorf("REGISTER %s with %q still accepted", user, password)
					}
					return nil
				}
			}
			if err := register("1001", "1234"); err != nil {
				t.Fatalf("seeded agent: %v\n%s", err, e.log.String())
			}
			if err := register("2001", "s3cret"); err == nil {
				t.Fatal("unknown agent registered")
			}

			k, err := store.ParseKey(key)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			db, err := store.Open(ctx, store.Options{URL: dbURL, Key: k})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			c := &resources.Credentials{Base: resources.Base{APIVersion: "v2", Ref: "credentials-2001"}, Username: "2001", Password: "s3cret"}
			if _, err := db.Create(ctx, c); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Create(ctx, &resources.Agent{Base: resources.Base{APIVersion: "v2", Ref: "agent-2001", Name: "New"},
				Username: "2001", DomainRef: "domain-01", CredentialsRef: "credentials-2001", Enabled: true}); err != nil {
				t.Fatal(err)
			}
			eventually(t, e, "new agent registers", func() error { return register("2001", "s3cret") })

			c.Password = "changed"
			if _, err := db.Update(ctx, c); err != nil {
				t.Fatal(err)
			}
			eventually(t, e, "old password refused", refused("2001", "s3cret"))
			if err := register("2001", "changed"); err != nil {
				t.Fatalf("new password: %v\n%s", err, e.log.String())
			}

			if err := db.Delete(ctx, resources.KindAgent, "agent-2001"); err != nil {
				t.Fatal(err)
			}
			eventually(t, e, "deleted agent refused", refused("2001", "changed"))
		})
	}
}
