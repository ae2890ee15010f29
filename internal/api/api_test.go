package api

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"connectrpc.com/connect"
	_ "github.com/jackc/pgx/v5/stdlib" // the pgx driver for creating test databases
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/routr-go/routr/internal/apipb/aclpb"
	"github.com/routr-go/routr/internal/apipb/aclpb/aclpbconnect"
	"github.com/routr-go/routr/internal/apipb/agentspb"
	"github.com/routr-go/routr/internal/apipb/agentspb/agentspbconnect"
	"github.com/routr-go/routr/internal/apipb/credentialspb"
	"github.com/routr-go/routr/internal/apipb/credentialspb/credentialspbconnect"
	"github.com/routr-go/routr/internal/apipb/domainspb"
	"github.com/routr-go/routr/internal/apipb/domainspb/domainspbconnect"
	"github.com/routr-go/routr/internal/apipb/numberspb"
	"github.com/routr-go/routr/internal/apipb/numberspb/numberspbconnect"
	"github.com/routr-go/routr/internal/apipb/peerspb"
	"github.com/routr-go/routr/internal/apipb/peerspb/peerspbconnect"
	"github.com/routr-go/routr/internal/apipb/trunkspb"
	"github.com/routr-go/routr/internal/apipb/trunkspb/trunkspbconnect"
	"github.com/routr-go/routr/internal/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fixture is an API server on a fresh embedded (SQLite) store.
type fixture struct {
	st  *store.DB
	srv *httptest.Server
	s   *Server
	h   http.Handler
	reg *prometheus.Registry
	key string
	log *strings.Builder
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	return newFixtureOn(t, "sqlite:"+filepath.Join(t.TempDir(), "api.db"))
}

// postgresURL makes a database of its own on the test PostgreSQL
// (ROUTR_TEST_POSTGRES, else 127.0.0.1:5432 as postgres) and drops it
// afterwards; it skips t when the server is unreachable, unless
// ROUTR_REQUIRE_POSTGRES or CI is set.
func postgresURL(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("ROUTR_TEST_POSTGRES")
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	db, err := sql.Open("pgx", admin)
	if err == nil {
		err = db.Ping()
	}
	if err != nil {
		if os.Getenv("ROUTR_REQUIRE_POSTGRES") != "" || os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL unreachable: %v", err)
		}
		t.Skipf("PostgreSQL unreachable (%v); set ROUTR_TEST_POSTGRES", err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "routr_api_" + hex.EncodeToString(b)
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
		db.Close()
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func newFixtureOn(t testing.TB, dbURL string) *fixture {
	t.Helper()
	key := make([]byte, store.KeySize)
	_, _ = rand.Read(key)
	st, err := store.Open(context.Background(), store.Options{
		URL: dbURL, Key: key,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	plain, _, err := st.CreateAPIKey(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st, key: plain, log: &strings.Builder{}, reg: prometheus.NewRegistry()}
	s := New(Options{Store: st, Logger: slog.New(slog.NewJSONHandler(logBuffer{f.log}, &slog.HandlerOptions{Level: slog.LevelError})), Registerer: f.reg})
	f.s = s
	f.h = s.Handler()
	f.srv = httptest.NewUnstartedServer(f.h)
	f.srv.EnableHTTP2 = true
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

// logBuffer collects the server's log; tests read it only after their
// calls returned, and the server logs before it answers.
type logBuffer struct{ b *strings.Builder }

func (w logBuffer) Write(p []byte) (int, error) { return w.b.Write(p) }

func (f *fixture) opts(extra ...connect.ClientOption) []connect.ClientOption {
	return append([]connect.ClientOption{connect.WithInterceptors(keyInterceptor(f.key))}, extra...)
}

func keyInterceptor(key string) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, r connect.AnyRequest) (connect.AnyResponse, error) {
			r.Header().Set("X-Api-Key", key)
			return next(ctx, r)
		}
	}
}

func wantCode(t *testing.T, err error, code connect.Code, contains string) {
	t.Helper()
	if connect.CodeOf(err) != code {
		t.Fatalf("error %v, want %s", err, code)
	}
	if contains != "" && !strings.Contains(err.Error(), contains) {
		t.Fatalf("error %q does not mention %q", err, contains)
	}
}

func TestCRUDAllKinds(t *testing.T) {
	t.Run("embedded", func(t *testing.T) { testCRUDAllKinds(t, newFixture(t)) })
	t.Run("postgres", func(t *testing.T) { testCRUDAllKinds(t, newFixtureOn(t, postgresURL(t))) })
}

func testCRUDAllKinds(t *testing.T, f *fixture) {
	ctx := context.Background()
	hc := f.srv.Client()
	for _, proto := range []connect.ClientOption{connect.WithGRPC(), connect.WithGRPCWeb(), connect.WithProtoJSON()} {
		o := f.opts(proto)
		acl := aclpbconnect.NewACLServiceClient(hc, f.srv.URL, o...)
		cr := credentialspbconnect.NewCredentialsServiceClient(hc, f.srv.URL, o...)
		dm := domainspbconnect.NewDomainsClient(hc, f.srv.URL, o...)
		ag := agentspbconnect.NewAgentsClient(hc, f.srv.URL, o...)
		tr := trunkspbconnect.NewTrunksClient(hc, f.srv.URL, o...)
		nb := numberspbconnect.NewNumbersClient(hc, f.srv.URL, o...)
		pr := peerspbconnect.NewPeersClient(hc, f.srv.URL, o...)

		a, err := acl.Create(ctx, connect.NewRequest(&aclpb.CreateACLRequest{Name: "acl", Allow: []string{"10.0.0.0/8"}}))
		if err != nil {
			t.Fatal(err)
		}
		c, err := cr.Create(ctx, connect.NewRequest(&credentialspb.CreateCredentialsRequest{Name: "c", Username: "u1", Password: "p"}))
		if err != nil {
			t.Fatal(err)
		}
		ext, _ := structpb.NewStruct(map[string]any{"k": "v", "n": 2.0})
		d, err := dm.Create(ctx, connect.NewRequest(&domainspb.CreateDomainRequest{Name: "d", DomainUri: "crud.test", AccessControlListRef: a.Msg.Ref, Extended: ext}))
		if err != nil {
			t.Fatal(err)
		}
		if d.Msg.AccessControlList.GetRef() != a.Msg.Ref || d.Msg.Extended.AsMap()["k"] != "v" || d.Msg.CreatedAt == 0 || d.Msg.ApiVersion != "v2" {
			t.Fatalf("domain %v", d.Msg)
		}
		ad, err := ag.Create(ctx, connect.NewRequest(&agentspb.CreateAgentRequest{Ref: "agent-x", Name: "A", Username: "1001", DomainRef: d.Msg.Ref, CredentialsRef: c.Msg.Ref}))
		if err != nil {
			t.Fatal(err)
		}
		if ad.Msg.Ref != "agent-x" || ad.Msg.Domain.GetDomainUri() != "crud.test" || ad.Msg.Credentials.GetUsername() != "u1" || !ad.Msg.Enabled || ad.Msg.Privacy != agentspb.Privacy_NONE {
			t.Fatalf("agent %v", ad.Msg)
		}
		_, err = ag.Create(ctx, connect.NewRequest(&agentspb.CreateAgentRequest{Ref: "agent-x", Name: "A", Username: "1002", DomainRef: d.Msg.Ref}))
		wantCode(t, err, connect.CodeAlreadyExists, "agent-x")
		_, err = ag.Create(ctx, connect.NewRequest(&agentspb.CreateAgentRequest{Name: "A", Username: "1003", DomainRef: "nope"}))
		wantCode(t, err, connect.CodeInvalidArgument, "spec.domainRef")
		up, err := ag.Update(ctx, connect.NewRequest(&agentspb.UpdateAgentRequest{Ref: "agent-x", Name: "B", Expires: 60}))
		if err != nil {
			t.Fatal(err)
		}
		if up.Msg.Name != "B" || up.Msg.Expires != 60 || up.Msg.Username != "1001" {
			t.Fatalf("updated agent %v", up.Msg)
		}
		_, err = ag.Update(ctx, connect.NewRequest(&agentspb.UpdateAgentRequest{Ref: "missing", Name: "B"}))
		wantCode(t, err, connect.CodeNotFound, "missing")
		_, err = ag.Get(ctx, connect.NewRequest(&agentspb.GetAgentRequest{}))
		wantCode(t, err, connect.CodeInvalidArgument, "ref")
		fb, err := ag.FindBy(ctx, connect.NewRequest(&agentspb.FindByRequest{FieldName: "username", FieldValue: "1001"}))
		if err != nil || len(fb.Msg.Items) != 1 {
			t.Fatalf("findBy: %v %v", fb, err)
		}
		_, err = ag.FindBy(ctx, connect.NewRequest(&agentspb.FindByRequest{FieldName: "password", FieldValue: "x"}))
		wantCode(t, err, connect.CodeInvalidArgument, "fieldName")
		_, err = dm.Delete(ctx, connect.NewRequest(&domainspb.DeleteDomainRequest{Ref: d.Msg.Ref}))
		wantCode(t, err, connect.CodeFailedPrecondition, "agent-x")

		tk, err := tr.Create(ctx, connect.NewRequest(&trunkspb.CreateTrunkRequest{Name: "t", InboundUri: "t.crud.test", Uris: []*trunkspb.TrunkURI{{Host: "10.1.1.1", Port: 5060, Transport: "tcp"}}}))
		if err != nil {
			t.Fatal(err)
		}
		if tk.Msg.Uris[0].Transport != "TCP" || !tk.Msg.Uris[0].Enabled {
			t.Fatalf("trunk %v", tk.Msg)
		}
		n, err := nb.Create(ctx, connect.NewRequest(&numberspb.CreateNumberRequest{Name: "n", TelUrl: "tel:+15550001", AorLink: "sip:1001@crud.test", TrunkRef: tk.Msg.Ref,
			ExtraHeaders: []*numberspb.ExtraHeader{{Name: "X-Foo", Value: "bar"}}}))
		if err != nil {
			t.Fatal(err)
		}
		if n.Msg.Trunk.GetRef() != tk.Msg.Ref || n.Msg.ExtraHeaders[0].GetValue() != "bar" {
			t.Fatalf("number %v", n.Msg)
		}
		_, err = nb.Create(ctx, connect.NewRequest(&numberspb.CreateNumberRequest{Name: "n", TelUrl: "555", TrunkRef: tk.Msg.Ref}))
		wantCode(t, err, connect.CodeInvalidArgument, "telUrl")
		p, err := pr.Create(ctx, connect.NewRequest(&peerspb.CreatePeerRequest{Name: "p", Username: "ms", Aor: "backend:ms", BalancingAlgorithm: peerspb.LoadBalancingAlgorithm_LEAST_SESSIONS}))
		if err != nil {
			t.Fatal(err)
		}
		if p.Msg.BalancingAlgorithm != peerspb.LoadBalancingAlgorithm_LEAST_SESSIONS || !p.Msg.Enabled {
			t.Fatalf("peer %v", p.Msg)
		}

		// List pages through everything.
		for i := range 3 {
			if _, err := cr.Create(ctx, connect.NewRequest(&credentialspb.CreateCredentialsRequest{Name: "c", Username: "pg" + string(rune('a'+i)), Password: "p"})); err != nil {
				t.Fatal(err)
			}
		}
		seen := map[string]bool{}
		token := ""
		for range 10 {
			l, err := cr.List(ctx, connect.NewRequest(&credentialspb.ListCredentialsRequest{PageSize: 2, PageToken: token}))
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range l.Msg.Items {
				seen[it.Ref] = true
			}
			if token = l.Msg.NextPageToken; token == "" {
				break
			}
		}
		if len(seen) != 4 {
			t.Fatalf("listed %d credentials, want 4", len(seen))
		}
		_, err = cr.List(ctx, connect.NewRequest(&credentialspb.ListCredentialsRequest{PageSize: 2, PageToken: "garbage"}))
		wantCode(t, err, connect.CodeInvalidArgument, "")

		// Clean up in dependency order, so the next protocol starts empty.
		del := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		_, err = pr.Delete(ctx, connect.NewRequest(&peerspb.DeletePeerRequest{Ref: p.Msg.Ref}))
		del(err)
		_, err = nb.Delete(ctx, connect.NewRequest(&numberspb.DeleteNumberRequest{Ref: n.Msg.Ref}))
		del(err)
		_, err = tr.Delete(ctx, connect.NewRequest(&trunkspb.DeleteTrunkRequest{Ref: tk.Msg.Ref}))
		del(err)
		_, err = ag.Delete(ctx, connect.NewRequest(&agentspb.DeleteAgentRequest{Ref: "agent-x"}))
		del(err)
		_, err = dm.Delete(ctx, connect.NewRequest(&domainspb.DeleteDomainRequest{Ref: d.Msg.Ref}))
		del(err)
		_, err = acl.Delete(ctx, connect.NewRequest(&aclpb.DeleteACLRequest{Ref: a.Msg.Ref}))
		del(err)
		for ref := range seen {
			_, err = cr.Delete(ctx, connect.NewRequest(&credentialspb.DeleteCredentialsRequest{Ref: ref}))
			del(err)
		}
		_, err = ag.Get(ctx, connect.NewRequest(&agentspb.GetAgentRequest{Ref: "agent-x"}))
		wantCode(t, err, connect.CodeNotFound, "")
	}
	for _, want := range []string{`"msg":"audit","action":"create","kind":"Agent","ref":"agent-x","key_id":"`, `"key_name":"test"`, `"action":"delete"`} {
		if !strings.Contains(f.log.String(), want) {
			t.Errorf("audit log lacks %s:\n%s", want, f.log.String())
		}
	}
}

func TestAPIKeyHeaders(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for name, set := range map[string]func(h http.Header){
		"x-api-key": func(h http.Header) { h.Set("X-Api-Key", f.key) },
		"bearer":    func(h http.Header) { h.Set("Authorization", "Bearer "+f.key) },
		"basic":     func(h http.Header) { h.Set("Authorization", "Basic "+basic("admin", f.key)) },
	} {
		c := domainspbconnect.NewDomainsClient(f.srv.Client(), f.srv.URL, connect.WithGRPC(), connect.WithInterceptors(connect.UnaryInterceptorFunc(
			func(next connect.UnaryFunc) connect.UnaryFunc {
				return func(ctx context.Context, r connect.AnyRequest) (connect.AnyResponse, error) {
					set(r.Header())
					return next(ctx, r)
				}
			})))
		if _, err := c.List(ctx, connect.NewRequest(&domainspb.ListDomainRequest{})); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, bad := range []string{"", "Bearer", "Basic !!!", "Basic " + basic("admin", "nope"), "Token " + f.key} {
		c := domainspbconnect.NewDomainsClient(f.srv.Client(), f.srv.URL, connect.WithGRPC(), connect.WithInterceptors(connect.UnaryInterceptorFunc(
			func(next connect.UnaryFunc) connect.UnaryFunc {
				return func(ctx context.Context, r connect.AnyRequest) (connect.AnyResponse, error) {
					r.Header().Set("Authorization", bad)
					return next(ctx, r)
				}
			})))
		_, err := c.Create(ctx, connect.NewRequest(&domainspb.CreateDomainRequest{Name: "x", DomainUri: "bad.test"}))
		wantCode(t, err, connect.CodeUnauthenticated, "")
	}
	recs, _, err := f.st.List(ctx, "Domain", 10, "")
	if err != nil || len(recs) != 0 {
		t.Fatalf("domains after refused creates: %d %v", len(recs), err)
	}
	calls := func(proc, code string) float64 {
		return testutil.ToFloat64(f.s.m.calls.WithLabelValues(proc, code))
	}
	if n := calls(domainspbconnect.DomainsCreateProcedure, "unauthenticated"); n != 5 {
		t.Errorf("unauthenticated creates counted %v, want 5", n)
	}
	if n := calls(domainspbconnect.DomainsListProcedure, "ok"); n != 3 {
		t.Errorf("lists counted %v, want 3", n)
	}
	// A made-up procedure is counted under "unknown", not under its path.
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/fonoster.routr.connect.domains.v2beta1.Domains/Nope", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	res, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if n := calls("unknown", "unauthenticated"); n != 1 {
		t.Errorf("unknown procedure counted %v, want 1", n)
	}
}
