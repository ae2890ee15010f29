package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/routr-go/routr/internal/resources"
)

func domain(ref, uri string) *resources.Domain {
	return &resources.Domain{Base: resources.Base{APIVersion: "v2", Ref: ref, Name: ref}, DomainURI: uri}
}

func agent(ref, user, domainRef, credRef string) *resources.Agent {
	return &resources.Agent{Base: resources.Base{APIVersion: "v2", Ref: ref, Name: ref}, Username: user,
		DomainRef: domainRef, CredentialsRef: credRef, Enabled: true}
}

func creds(ref, user, pw string) *resources.Credentials {
	return &resources.Credentials{Base: resources.Base{APIVersion: "v2", Ref: ref, Name: ref}, Username: user, Password: pw}
}

func TestSeedAndSnapshot(t *testing.T) {
	forEach(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := open(t, url, examples(t)...)
		set, rev, err := db.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rev != 1 || len(set.Agents()) != 3 || len(set.CredentialsList()) != 5 || len(set.Trunks()) != 1 {
			t.Fatalf("seeded snapshot: rev %d, %d agents, %d credentials, %d trunks", rev, len(set.Agents()), len(set.CredentialsList()), len(set.Trunks()))
		}
		a := set.Agent("domain-01", "1001")
		if a == nil || a.Credentials == nil || a.Credentials.Password != "1234" || a.Domain.ACL == nil {
			t.Fatalf("agent 1001 = %+v", a)
		}
		db.Close()
		if _, _, err := db.Snapshot(ctx); !errors.Is(err, ErrClosed) {
			t.Errorf("Snapshot after Close: %v, want ErrClosed", err)
		}
		// A second start neither migrates nor seeds again.
		db2 := open(t, url, examples(t)...)
		if rev, err := db2.Revision(ctx); err != nil || rev != 1 {
			t.Errorf("revision after reopen = %d, %v; want 1", rev, err)
		}
	})
}

func TestCRUD(t *testing.T) {
	forEach(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := open(t, url)
		mustCreate := func(r resources.Resource) Record {
			t.Helper()
			rec, err := db.Create(ctx, r)
			if err != nil {
				t.Fatalf("Create %s: %v", r.Meta().Ref, err)
			}
			return rec
		}
		mustCreate(domain("d1", "sip.example.com"))
		mustCreate(creds("c1", "1001", "s3cret"))
		rec := mustCreate(agent("", "1001", "d1", "c1"))
		ref := rec.Resource.Meta().Ref
		if len(ref) != 36 {
			t.Errorf("generated ref %q, want a UUID", ref)
		}
		if rec.CreatedAt.IsZero() || !rec.CreatedAt.Equal(rec.UpdatedAt) {
			t.Errorf("times %v %v", rec.CreatedAt, rec.UpdatedAt)
		}

		got, err := db.Get(ctx, resources.KindAgent, ref)
		if err != nil {
			t.Fatal(err)
		}
		if a := got.Resource.(*resources.Agent); a.Username != "1001" || a.DomainRef != "d1" || !a.Enabled {
			t.Errorf("Get = %+v", a)
		}
		c, err := db.Get(ctx, resources.KindCredentials, "c1")
		if err != nil || c.Resource.(*resources.Credentials).Password != "s3cret" {
			t.Errorf("Get credentials = %+v, %v", c.Resource, err)
		}
		if _, err := db.Get(ctx, resources.KindAgent, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get missing: %v", err)
		}
		if _, err := db.Get(ctx, resources.KindDomain, ref); !errors.Is(err, ErrKindMismatch) || !errors.Is(err, ErrNotFound) {
			t.Errorf("Get with wrong kind: %v", err)
		}

		// Update keeps CreatedAt, moves UpdatedAt, bumps the revision.
		rev0, _ := db.Revision(ctx)
		a := got.Resource.(*resources.Agent)
		a.Name, a.Privacy = "Renamed", resources.PrivacyPrivate
		up, err := db.Update(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if !up.CreatedAt.Equal(rec.CreatedAt) || up.UpdatedAt.Before(rec.UpdatedAt) || up.Resource.Meta().Name != "Renamed" {
			t.Errorf("Update = %+v", up)
		}
		if rev, _ := db.Revision(ctx); rev != rev0+1 {
			t.Errorf("revision %d after update, want %d", rev, rev0+1)
		}
		if _, err := db.Update(ctx, agent("missing", "x", "d1", "")); !errors.Is(err, ErrNotFound) {
			t.Errorf("Update missing: %v", err)
		}
		if _, err := db.Update(ctx, domain(ref, "x.example.com")); !errors.Is(err, ErrKindMismatch) {
			t.Errorf("Update with wrong kind: %v", err)
		}

		// Deleting what is still referenced names the referrer.
		err = db.Delete(ctx, resources.KindDomain, "d1")
		var re *ReferencedError
		if !errors.Is(err, ErrReferenced) || !errors.As(err, &re) || len(re.By) != 1 || re.By[0].Ref != ref || re.By[0].Field != "spec.domainRef" {
			t.Fatalf("Delete referenced domain: %v", err)
		}
		if err := db.Delete(ctx, resources.KindAgent, ref); err != nil {
			t.Fatal(err)
		}
		if err := db.Delete(ctx, resources.KindDomain, "d1"); err != nil {
			t.Fatal(err)
		}
		if err := db.Delete(ctx, resources.KindDomain, "d1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("second Delete: %v", err)
		}
		set, _, err := db.Snapshot(ctx)
		if err != nil || len(set.All()) != 1 || set.Credentials("c1") == nil {
			t.Errorf("after deletes: %v, %v", set.All(), err)
		}
	})
}

func TestValidation(t *testing.T) {
	forEach(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := open(t, url)
		if _, err := db.Create(ctx, domain("d1", "sip.example.com")); err != nil {
			t.Fatal(err)
		}
		rev0, _ := db.Revision(ctx)
		for name, tc := range map[string]struct {
			r    resources.Resource
			want string
		}{
			"dangling ref":  {agent("a1", "1001", "nope", ""), `spec.domainRef: references unknown Domain "nope"`},
			"bad host":      {domain("d2", "not a host"), "is not a valid host name"},
			"same uri":      {domain("d3", "SIP.example.com"), "also the domainUri"},
			"no apiVersion": {&resources.Domain{Base: resources.Base{Ref: "d4"}, DomainURI: "d4.example.com"}, "apiVersion: required"},
		} {
			_, err := db.Create(ctx, tc.r)
			var ve *resources.ValidationError
			if !errors.As(err, &ve) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: Create = %v, want a ValidationError with %q", name, err, tc.want)
			}
		}
		if _, err := db.Create(ctx, domain("d1", "other.example.com")); !errors.Is(err, ErrAlreadyExists) {
			t.Errorf("Create duplicate: %v", err)
		}
		if _, err := db.Create(ctx, creds("d1", "u", "p")); !errors.Is(err, ErrAlreadyExists) {
			t.Errorf("Create duplicate ref of another kind: %v", err)
		}
		if rev, _ := db.Revision(ctx); rev != rev0 {
			t.Errorf("failed writes moved the revision %d -> %d", rev0, rev)
		}
		if _, _, err := db.List(ctx, resources.KindDomain, 10, "garbage!"); err == nil {
			t.Error("List with a bad token succeeded")
		}
	})
}

func TestList(t *testing.T) {
	forEach(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := open(t, url)
		var want []string
		for i := range 7 {
			ref := fmt.Sprintf("d%d", i)
			if _, err := db.Create(ctx, domain(ref, ref+".example.com")); err != nil {
				t.Fatal(err)
			}
			want = append(want, ref)
		}
		if _, err := db.Create(ctx, creds("c", "u", "p")); err != nil {
			t.Fatal(err)
		}
		var got []string
		tok := ""
		pages := 0
		for {
			recs, next, err := db.List(ctx, resources.KindDomain, 3, tok)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, r := range recs {
				got = append(got, r.Resource.Meta().Ref)
			}
			if next == "" {
				break
			}
			tok = next
		}
		if !slices.Equal(got, want) || pages != 3 {
			t.Errorf("paged list = %v in %d pages, want %v in 3", got, pages, want)
		}
		recs, next, err := db.List(ctx, resources.KindCredentials, 0, "")
		if err != nil || len(recs) != 1 || next != "" || recs[0].Resource.(*resources.Credentials).Password != "p" {
			t.Errorf("List credentials = %v %q %v", recs, next, err)
		}
	})
}

// Passwords never reach the database in clear, and a database refuses a
// key other than the one it was created with.
func TestEncryptionAtRest(t *testing.T) {
	forEach(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := open(t, url)
		const pw = "correct-horse-battery"
		if _, err := db.Create(ctx, creds("c1", "u", pw)); err != nil {
			t.Fatal(err)
		}
		var body string
		var secret []byte
		if err := db.r.QueryRowContext(ctx, db.d.q("SELECT body, secret FROM resources WHERE ref = ?"), "c1").Scan(&body, &secret); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(body, pw) || bytes.Contains(secret, []byte(pw)) || len(secret) == 0 {
			t.Fatalf("password stored in clear: body %s secret %x", body, secret)
		}
		// A sealed password does not open under another ref.
		if _, err := db.seal.open(secret, credentialsAD("c2")); err == nil {
			t.Error("sealed password opened for another ref")
		}
		db.Close()

		other := bytes.Repeat([]byte{7}, KeySize)
		if _, err := Open(ctx, Options{URL: url, Key: other}); err == nil || !strings.Contains(err.Error(), "encryption key does not match") {
			t.Errorf("Open with another key: %v", err)
		}
		if _, err := Open(ctx, Options{URL: url}); err == nil || !strings.Contains(err.Error(), "ENCRYPTION_KEY") {
			t.Errorf("Open without a key: %v", err)
		}
	})
}

// Many writers creating the same ref at once: exactly one wins, the rest
// get ErrAlreadyExists; distinct refs all get in, each with its own
// revision.
func TestConcurrentWrites(t *testing.T) {
	forEach(t, func(t *testing.T, url string) {
		ctx := context.Background()
		dbs := []*DB{open(t, url), open(t, url)} // two instances, one database
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				_, errs[i] = dbs[i%2].Create(ctx, domain("same", fmt.Sprintf("s%d.example.com", i)))
			})
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, ErrAlreadyExists):
				t.Errorf("loser got %v, want ErrAlreadyExists", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d creates of one ref succeeded, want 1", won)
		}
		rev0, _ := dbs[0].Revision(ctx)
		for i := range n {
			wg.Go(func() {
				ref := fmt.Sprintf("d%d", i)
				if _, err := dbs[i%2].Create(ctx, domain(ref, ref+".example.com")); err != nil {
					t.Errorf("create %s: %v", ref, err)
				}
			})
		}
		wg.Wait()
		set, rev, err := dbs[1].Snapshot(ctx)
		if err != nil || len(set.Domains()) != n+1 || rev != rev0+n {
			t.Errorf("after %d parallel creates: %d domains, revision %d (from %d), %v", n, len(set.Domains()), rev, rev0, err)
		}
	})
}

// Instances starting together on a new database migrate it once.
func TestConcurrentOpen(t *testing.T) {
	forEach(t, func(t *testing.T, url string) {
		var wg sync.WaitGroup
		dbs := make([]*DB, 4)
		errs := make([]error, 4)
		for i := range dbs {
			wg.Go(func() {
				dbs[i], errs[i] = Open(context.Background(), Options{URL: url, Key: testKey, Seed: examples(t)})
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("Open %d: %v", i, err)
			}
			defer dbs[i].Close()
		}
		var n int
		if err := dbs[0].r.QueryRow("SELECT COUNT(*) FROM schema_migrations").Scan(&n); err != nil || n != 1 {
			t.Errorf("schema_migrations rows = %d, %v", n, err)
		}
		set, rev, err := dbs[3].Snapshot(context.Background())
		if err != nil || rev != 1 || len(set.Agents()) != 3 {
			t.Errorf("seeded %d agents at revision %d (%v); want 3 at 1", len(set.Agents()), rev, err)
		}
	})
}

// A write through one instance reaches the Holder another instance
// watches, without a restart.
func TestWatchAcrossInstances(t *testing.T) {
	forEach(t, func(t *testing.T, url string) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		writer := open(t, url, examples(t)...)
		// On PostgreSQL the reader must learn of the change by notification:
		// its polling interval is longer than the test may run.
		poll := 100 * time.Millisecond
		if IsPostgres(url) {
			poll = time.Hour
		}
		reader, err := Open(ctx, Options{URL: url, Key: testKey, PollInterval: poll})
		if err != nil {
			t.Fatal(err)
		}
		defer reader.Close()
		h := resources.NewHolder(nil)
		ownH := resources.NewHolder(nil)
		var wg sync.WaitGroup
		defer wg.Wait()
		defer cancel()
		watchErr := make(chan error, 2)
		wg.Go(func() { watchErr <- reader.Watch(ctx, h) })
		wg.Go(func() { watchErr <- writer.Watch(ctx, ownH) })
		waitFor(t, "initial snapshot", func() bool { return h.Load() != nil && ownH.Load() != nil })

		if _, err := writer.Create(ctx, creds("c9", "1009", "pw9")); err != nil {
			t.Fatal(err)
		}
		if _, err := writer.Create(ctx, agent("a9", "1009", "domain-01", "c9")); err != nil {
			t.Fatal(err)
		}
		// The writer's own Holder has the change as soon as Create returns.
		if ownH.Load().Agent("domain-01", "1009") == nil {
			t.Error("writer's Holder lacks the new agent after Create returned")
		}
		waitFor(t, "agent in the other instance", func() bool {
			a := h.Load().Agent("domain-01", "1009")
			return a != nil && a.Credentials != nil && a.Credentials.Password == "pw9"
		})
		if err := writer.Delete(ctx, resources.KindAgent, "a9"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "delete in the other instance", func() bool { return h.Load().AgentByRef("a9") == nil })
		// The reader's metrics show the revision it serves and its reloads.
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(reader)
		want, _ := writer.Revision(ctx)
		waitFor(t, "reader metrics", func() bool {
			m := gather(t, reg)
			return m["routr_store_revision"] == float64(want) && m["routr_store_reloads_total"] >= 1 && m["routr_store_writes_total"] == 0
		})
		if _, err := writer.Create(ctx, agent("a10", "1001", "domain-01", "")); err == nil {
			t.Error("duplicate username accepted")
		}
		// Four writes: the seed, two creates, one delete.
		wreg := prometheus.NewPedanticRegistry()
		wreg.MustRegister(writer)
		if m := gather(t, wreg); m["routr_store_writes_total"] != 4 || m["routr_store_write_errors_total"] != 1 || m["routr_store_revision"] != float64(want) {
			t.Errorf("writer metrics %v", m)
		}
		cancel()
		wg.Wait()
		for range 2 {
			if err := <-watchErr; err != nil {
				t.Errorf("Watch returned %v", err)
			}
		}
	})
}

// waitFor polls cond until it holds or 15s pass (a bound for a stuck
// test, not a timing assertion).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWatchStopsOnClose(t *testing.T) {
	forEach(t, func(t *testing.T, url string) {
		db, err := Open(context.Background(), Options{URL: url, Key: testKey})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		h := resources.NewHolder(nil)
		go func() { done <- db.Watch(context.Background(), h) }()
		waitFor(t, "watch started", func() bool {
			db.mu.Lock()
			defer db.mu.Unlock()
			return len(db.watchers) == 1
		})
		db.Close()
		if err := <-done; err != nil {
			t.Errorf("Watch after Close returned %v", err)
		}
	})
}

func TestAPIKeys(t *testing.T) {
	forEach(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := open(t, url)
		plain, k, err := db.CreateAPIKey(ctx, "ci")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(plain, "rk_"+k.ID+"_") {
			t.Errorf("key %q does not start with its id %q", plain, k.ID)
		}
		got, err := db.CheckAPIKey(ctx, plain)
		if err != nil || got.ID != k.ID || got.Name != "ci" {
			t.Errorf("CheckAPIKey = %+v, %v", got, err)
		}
		// The hash, not the key, is stored.
		var hash []byte
		if err := db.r.QueryRow(db.d.q("SELECT hash FROM api_keys WHERE id = ?"), k.ID).Scan(&hash); err != nil || bytes.Contains([]byte(plain), hash) || len(hash) != 32 {
			t.Errorf("stored hash %x (%v)", hash, err)
		}
		for _, bad := range []string{"", "rk_", plain + "x", plain[:len(plain)-2] + "AA", strings.Replace(plain, k.ID, "0000000000000000", 1), "Bearer " + plain} {
			if _, err := db.CheckAPIKey(ctx, bad); !errors.Is(err, ErrUnauthenticated) {
				t.Errorf("CheckAPIKey(%q) = %v, want ErrUnauthenticated", bad, err)
			}
		}
		if _, _, err := db.CreateAPIKey(ctx, " "); err == nil {
			t.Error("CreateAPIKey with an empty name succeeded")
		}
		if err := db.RevokeAPIKey(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
		if err := db.RevokeAPIKey(ctx, k.ID); err != nil {
			t.Errorf("second revoke: %v", err)
		}
		if err := db.RevokeAPIKey(ctx, "ffffffffffffffff"); !errors.Is(err, ErrNotFound) {
			t.Errorf("revoke unknown: %v", err)
		}
		if _, err := db.CheckAPIKey(ctx, plain); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("revoked key accepted: %v", err)
		}
		keys, err := db.ListAPIKeys(ctx)
		if err != nil || len(keys) != 1 || keys[0].RevokedAt.IsZero() {
			t.Errorf("ListAPIKeys = %+v, %v", keys, err)
		}
	})
}

func TestApply(t *testing.T) {
	forEach(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := open(t, url)
		rs := examples(t)
		slices.Reverse(rs) // Apply orders by dependency itself
		recs, err := Apply(ctx, db, rs)
		if err != nil || len(recs) != len(rs) {
			t.Fatalf("Apply = %d records, %v", len(recs), err)
		}
		// Applying again updates in place; a changed password is stored.
		for _, r := range rs {
			if c, ok := r.(*resources.Credentials); ok && c.Ref == "credentials-01" {
				c.Password = "changed"
			}
		}
		if _, err := Apply(ctx, db, rs); err != nil {
			t.Fatal(err)
		}
		set, _, err := db.Snapshot(ctx)
		if err != nil || len(set.All()) != len(rs) || set.Credentials("credentials-01").Password != "changed" {
			t.Errorf("after re-apply: %d resources, %v", len(set.All()), err)
		}
		// Problems found while applying files keep their file and line.
		bad, err := resources.Parse("bad.yaml", []byte("- apiVersion: v2beta1\n  kind: Agent\n  ref: x\n  spec:\n    username: u\n    domainRef: nope\n"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = Apply(ctx, db, bad)
		if err == nil || !strings.Contains(err.Error(), "bad.yaml:6") {
			t.Errorf("Apply bad file: %v", err)
		}
	})
}

// The migration files split into the statements they hold.
func TestMigrationFiles(t *testing.T) {
	for _, d := range []string{"sqlite", "postgres"} {
		ms, err := migrationsFor(d)
		if err != nil || len(ms) == 0 || ms[0].version != 1 || len(ms[0].stmts) != 5 {
			t.Errorf("%s: %+v, %v", d, ms, err)
		}
	}
}

// gather returns the registry's metrics by name (unlabelled ones).
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetGauge() != nil:
				out[mf.GetName()] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				out[mf.GetName()] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

// A Prisma-style DATABASE_URL, as Routr's, works: ?schema=name selects
// (and creates) the schema the tables live in.
func TestPostgresSchemaParam(t *testing.T) {
	for _, b := range backends(t) {
		if b.name != "postgres" {
			continue
		}
		url := b.newURL(t)
		db := open(t, url+"&schema=routr_v2", examples(t)...)
		var n int
		if err := db.r.QueryRow("SELECT COUNT(*) FROM routr_v2.resources").Scan(&n); err != nil || n == 0 {
			t.Fatalf("resources in schema routr_v2: %d, %v", n, err)
		}
		db2 := open(t, url+"&schema=public")
		if set, _, err := db2.Snapshot(context.Background()); err != nil || len(set.All()) != 0 {
			t.Errorf("schema public is not empty: %v", err)
		}
	}
}

// A reader whose notification connection is killed keeps up by polling
// and listens again.
func TestWatchSurvivesLostConnection(t *testing.T) {
	for _, b := range backends(t) {
		if b.name != "postgres" {
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			url := b.newURL(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			writer := open(t, url)
			reader, err := Open(ctx, Options{URL: url, Key: testKey, PollInterval: 100 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer reader.Close()
			h := resources.NewHolder(nil)
			done := make(chan error, 1)
			go func() { done <- reader.Watch(ctx, h) }()
			waitFor(t, "initial snapshot", func() bool { return h.Load() != nil })

			// kill ends this database's LISTEN connections; it reports how many.
			kill := func() int {
				var n int
				err := writer.r.QueryRow(`SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
					WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`).Scan(&n)
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			waitFor(t, "a LISTEN connection", func() bool { return kill() == 1 })
			if _, err := writer.Create(ctx, domain("d1", "d1.example.com")); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "change after the connection was lost", func() bool { return h.Load().Domain("d1") != nil })
			// It listens again.
			waitFor(t, "a new LISTEN connection", func() bool { return kill() == 1 })
			if _, err := writer.Create(ctx, domain("d2", "d2.example.com")); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "second change", func() bool { return h.Load().Domain("d2") != nil })
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Watch: %v", err)
			}
		})
	}
}
