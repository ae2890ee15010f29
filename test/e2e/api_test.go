package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/routr-go/routr/internal/apipb/agentspb"
	"github.com/routr-go/routr/internal/apipb/agentspb/agentspbconnect"
	"github.com/routr-go/routr/internal/apipb/credentialspb"
	"github.com/routr-go/routr/internal/apipb/credentialspb/credentialspbconnect"
	"github.com/routr-go/routr/internal/apipb/domainspb"
	"github.com/routr-go/routr/internal/apipb/domainspb/domainspbconnect"
	"github.com/routr-go/routr/internal/siptest"
)

// database is one store backend for the API tests.
type database struct {
	name string
	url  func(t *testing.T) string
}

var databases = []database{
	{"embedded", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "routr.db") }},
	{"postgres", newPostgresDB},
}

// apiEdge is an edge in database mode with its management API.
type apiEdge struct {
	*edge
	api string // host:port
	key string
	env []string
}

func startAPIEdge(t *testing.T, db database, extraEnv ...string) *apiEdge {
	t.Helper()
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	a := &apiEdge{api: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	a.env = append([]string{"DATABASE_URL=" + db.url(t), "ENCRYPTION_KEY=" + hex.EncodeToString(k), "API_ADDR=" + a.api}, extraEnv...)
	// The first key is made on the database directly: there is no key to
	// call the API with yet.
	out := a.ctl(t, "apikey", "create", "contract", "-o", "json")
	var created struct{ ID, Name, Key string }
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Key == "" {
		t.Fatalf("apikey create: %v: %s", err, out)
	}
	a.key = created.Key
	// Tests retry REGISTERs until a change arrives: the flood guard's
	// per-user failure ban is off.
	a.edge = startEdge(t, append([]string{"GUARD_MAX_AUTH_FAILURES=0"}, a.env...)...)
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.Dial("tcp", a.api)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("API not listening on %s; log:\n%s", a.api, a.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return a
}

// ctl runs `routr ctl args...` against a's database and API.
func (a *apiEdge) ctl(t *testing.T, args ...string) string {
	t.Helper()
	out, _ := a.ctlOut(t, args...)
	return out
}

// ctlOut is ctl returning standard error too.
func (a *apiEdge) ctlOut(t *testing.T, args ...string) (string, string) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"ctl"}, args...)...)
	cmd.Env = append(os.Environ(), a.env...)
	cmd.Env = append(cmd.Env, "ROUTR_API_ENDPOINT="+a.api, "ROUTR_API_KEY="+a.key)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("routr ctl %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), stderr.String()
}

// h2c is an HTTP client speaking plaintext HTTP/2, as gRPC clients do.
func h2c() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p}, Timeout: 10 * time.Second}
}

func withKey(key string) connect.ClientOption {
	return connect.WithInterceptors(connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, r connect.AnyRequest) (connect.AnyResponse, error) {
			if key != "" {
				r.Header().Set("Authorization", "Bearer "+key)
			}
			return next(ctx, r)
		}
	}))
}

func needContractSDK(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(repoRoot, "test", "contract")
	missing := ""
	if _, err := exec.LookPath("node"); err != nil {
		missing = "Node.js is not installed"
	} else if _, err := os.Stat(filepath.Join(dir, "node_modules", "@routr", "sdk")); err != nil {
		missing = "Routr's SDK is not installed: run npm ci in " + dir
	}
	if missing != "" {
		if os.Getenv("E2E_REQUIRE_CONTRACT") != "" {
			t.Fatal(missing)
		}
		t.Skip(missing + " (.ci/run does, and sets E2E_REQUIRE_CONTRACT=1)")
	}
	return dir
}

// TestAPIContractWithRoutrSDK runs Routr's published Node SDK against the
// binary (test/contract/contract.js), then registers and calls as the
// agents it created, with no restart in between; then deletes one over
// gRPC and sees its REGISTER refused.
func TestAPIContractWithRoutrSDK(t *testing.T) {
	dir := needContractSDK(t)
	type run struct {
		name    string
		db      database
		tls     bool
		trusted bool // API_TRUSTED_NETWORKS=127.0.0.1: calls without a key, as rctl's, are accepted
	}
	runs := []run{{databases[0].name, databases[0], false, false}, {databases[1].name, databases[1], false, true}, {"embedded-tls", databases[0], true, false}}
	for _, r := range runs {
		db := r.db
		t.Run(r.name, func(t *testing.T) {
			var edgeEnv, nodeEnv []string // for the edge, for node
			roots := x509.NewCertPool()
			if r.tls {
				cert, key := selfSigned(t, t.TempDir())
				pem, err := os.ReadFile(cert)
				if err != nil || !roots.AppendCertsFromPEM(pem) {
					t.Fatalf("read %s: %v", cert, err)
				}
				edgeEnv = []string{"API_TLS_CERT=" + cert, "API_TLS_KEY=" + key}
				nodeEnv = []string{"ROUTR_API_CACERT=" + cert}
			}
			if r.trusted {
				edgeEnv = append(edgeEnv, "API_TRUSTED_NETWORKS=127.0.0.1,::1")
				nodeEnv = append(nodeEnv, "CONTRACT_TRUSTED=1")
			}
			a := startAPIEdge(t, db, edgeEnv...)
			domain := "contract-" + r.name + ".test"
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			node := exec.CommandContext(ctx, "node", "contract.js")
			node.Dir = dir
			node.Env = append(os.Environ(), "ROUTR_API="+a.api, "ROUTR_API_KEY="+a.key, "CONTRACT_DOMAIN="+domain)
			node.Env = append(node.Env, nodeEnv...)
			var stdout, stderr bytes.Buffer
			node.Stdout, node.Stderr = &stdout, &stderr
			if err := node.Run(); err != nil {
				t.Fatalf("contract.js: %v\n%s\nedge log:\n%s", err, stderr.String(), a.log.String())
			}
			var refs struct{ Domain, ACL, Alice, Bob, AliceCredentials string }
			if err := json.Unmarshal(stdout.Bytes(), &refs); err != nil {
				t.Fatalf("contract.js output %q: %v", stdout.String(), err)
			}

			sipAddr := fmt.Sprintf("127.0.0.1:%d", a.sipPort)
			phone := func(user, pass string) *siptest.Phone {
				p, err := siptest.NewPhone("udp", user, domain, pass, sipAddr)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(p.Close)
				return p
			}
			alice, bob := phone("alice", "alice-secret"), phone("bob", "bob-secret")
			// The edge picks changes up on its own; wait for it.
			waitRegister(t, bob, 200)
			waitRegister(t, alice, 200)
			c := siptest.Dial(t, alice, bob, "bob", "contract-call-"+db.name)
			ok := c.Answer()
			c.Hangup(ok, true)

			// Delete bob over gRPC; his next REGISTER is refused.
			hc, base := h2c(), "http://"+a.api
			if r.tls {
				hc, base = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}}, "https://"+a.api
			}
			agents := agentspbconnect.NewAgentsClient(hc, base, connect.WithGRPC(), withKey(a.key))
			if _, err := agents.Delete(ctx, connect.NewRequest(&agentspb.DeleteAgentRequest{Ref: refs.Bob})); err != nil {
				t.Fatalf("delete bob: %v", err)
			}
			waitRegisterNot(t, bob, 200)

			// A new password, over HTTP/JSON (Connect), is the one that
			// works from then on.
			creds := credentialspbconnect.NewCredentialsServiceClient(hc, base, connect.WithProtoJSON(), withKey(a.key))
			if _, err := creds.Update(ctx, connect.NewRequest(&credentialspb.UpdateCredentialsRequest{Ref: refs.AliceCredentials, Password: "alice-new"})); err != nil {
				t.Fatalf("update alice's password: %v", err)
			}
			waitRegister(t, phone("alice", "alice-new"), 200)
			if res, err := alice.Register(600, ""); err == nil && res.StatusCode == 200 {
				t.Fatal("the old password still registers")
			}

			log := a.log.String()
			for _, want := range []string{`"msg":"audit"`, `"action":"delete"`, `"ref":"` + refs.Bob + `"`, `"key_name":"contract"`} {
				if !strings.Contains(log, want) {
					t.Errorf("no %s in the edge log", want)
				}
			}
			if r.tls {
				return // ctl over TLS is covered by internal/api's tests
			}
			// ctl sees what the SDK made.
			if out := a.ctl(t, "get", "agents"); !strings.Contains(out, "alice") || strings.Contains(out, refs.Bob) {
				t.Errorf("ctl get agents:\n%s", out)
			}
			if out := a.ctl(t, "get", "domain", refs.Domain, "-o", "json"); !strings.Contains(out, `"domainUri": "`+domain+`"`) {
				t.Errorf("ctl get domain -o json:\n%s", out)
			}
		})
	}
}

// waitRegister registers until the answer is want, for up to 10s (the
// edge reloads the store's changes asynchronously).
func waitRegister(t *testing.T, p *siptest.Phone, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := p.Register(600, "")
		if err == nil && res.StatusCode == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("REGISTER %s: %v %v, want %d", p.User, res, err, want)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func waitRegisterNot(t *testing.T, p *siptest.Phone, not int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := p.Register(600, "")
		if err == nil && res.StatusCode != not {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("REGISTER %s still answered %d", p.User, not)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestAPIRequiresKey: requests without a valid key, in every protocol,
// are refused with Unauthenticated and change nothing.
func TestAPIRequiresKey(t *testing.T) {
	a := startAPIEdge(t, databases[0])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	count := func() int {
		good := domainspbconnect.NewDomainsClient(http.DefaultClient, "http://"+a.api, withKey(a.key))
		res, err := good.List(ctx, connect.NewRequest(&domainspb.ListDomainRequest{PageSize: 1000}))
		if err != nil {
			t.Fatal(err)
		}
		return len(res.Msg.Items)
	}
	before := count()
	revoked := a.ctl(t, "apikey", "create", "revoked", "-o", "json")
	var rk struct{ ID, Key string }
	if err := json.Unmarshal([]byte(revoked), &rk); err != nil {
		t.Fatal(err)
	}
	a.ctl(t, "apikey", "revoke", rk.ID)

	for _, key := range []string{"", "wrong", rk.Key, a.key + "x"} {
		for name, opt := range map[string]connect.ClientOption{"grpc": connect.WithGRPC(), "grpcweb": connect.WithGRPCWeb(), "connect": connect.WithProtoJSON()} {
			c := domainspbconnect.NewDomainsClient(h2c(), "http://"+a.api, opt, withKey(key))
			_, err := c.Create(ctx, connect.NewRequest(&domainspb.CreateDomainRequest{Name: "x", DomainUri: "nokey.test"}))
			if connect.CodeOf(err) != connect.CodeUnauthenticated {
				t.Errorf("%s with key %q: %v, want unauthenticated", name, key, err)
			}
		}
	}
	// Plain HTTP/JSON without a key.
	res, err := http.Post("http://"+a.api+domainspbconnect.DomainsCreateProcedure, "application/json", strings.NewReader(`{"name":"x","domainUri":"nokey.test"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("HTTP/JSON without key: %d, want 401", res.StatusCode)
	}
	if after := count(); after != before {
		t.Fatalf("domains %d -> %d after refused requests", before, after)
	}
	// A valid key works over every protocol.
	for name, opt := range map[string]connect.ClientOption{"grpc": connect.WithGRPC(), "grpcweb": connect.WithGRPCWeb(), "connect": connect.WithProtoJSON()} {
		c := domainspbconnect.NewDomainsClient(h2c(), "http://"+a.api, opt, withKey(a.key))
		d, err := c.Create(ctx, connect.NewRequest(&domainspb.CreateDomainRequest{Name: "k " + name, DomainUri: name + ".key.test"}))
		if err != nil {
			t.Fatalf("%s create: %v", name, err)
		}
		if _, err := c.Delete(ctx, connect.NewRequest(&domainspb.DeleteDomainRequest{Ref: d.Msg.Ref})); err != nil {
			t.Fatalf("%s delete: %v", name, err)
		}
	}
	if after := count(); after != before {
		t.Fatalf("domains %d -> %d", before, after)
	}
}

// TestCtlApply moves a files-mode setup (config/resources) into a fresh
// database with one command and reads it back through the API.
func TestCtlApply(t *testing.T) {
	a := startAPIEdge(t, databases[0])
	out := a.ctl(t, "apply", "-f", filepath.Join(repoRoot, "config", "resources"))
	if !strings.Contains(out, "resources applied") {
		t.Fatalf("apply:\n%s", out)
	}
	// Applying again updates in place.
	a.ctl(t, "apply", "-f", filepath.Join(repoRoot, "config", "resources"))
	got := a.ctl(t, "get", "agents", "-o", "json")
	var items []map[string]any
	if err := json.Unmarshal([]byte(got), &items); err != nil || len(items) == 0 {
		t.Fatalf("get agents -o json: %v\n%s", err, got)
	}
	// create / update / describe / delete through ctl.
	a.ctl(t, "create", "credentials", "ref=ctl-creds", "name=ctl", "username=ctl1", "password=pw")
	a.ctl(t, "update", "credentials", "ctl-creds", "name=renamed")
	if d := a.ctl(t, "describe", "credentials", "ctl-creds"); !strings.Contains(d, `"name": "renamed"`) {
		t.Fatalf("describe:\n%s", d)
	}
	a.ctl(t, "delete", "credentials", "ctl-creds")

	// apply -api: the same through the API, refs kept, twice (create,
	// then update), with what the API cannot carry reported.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "all.yaml"), []byte(applyViaAPI), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr := a.ctlOut(t, "apply", "-api", "-f", dir)
	for _, want := range []string{"created AccessControlList api-acl", "created Trunk api-trunk", "created Number api-number", "created Domain api-domain", "created Agent api-agent", "created Peer api-peer", "6 resources applied"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply -api: no %q in\n%s", want, out)
		}
	}
	if !strings.Contains(stderr, `Agent "api-agent": spec.enabled: false cannot be expressed`) {
		t.Errorf("apply -api did not report the lost enabled: false: %q", stderr)
	}
	out, _ = a.ctlOut(t, "apply", "-api", "-f", dir)
	if !strings.Contains(out, "updated Domain api-domain") {
		t.Errorf("second apply -api:\n%s", out)
	}
	if d := a.ctl(t, "describe", "domain", "api-domain"); !strings.Contains(d, `"domainUri": "api.apply.test"`) || !strings.Contains(d, `"ref": "api-acl"`) || !strings.Contains(d, `"numberRef": "api-number"`) {
		t.Fatalf("describe api-domain:\n%s", d)
	}
}

// applyViaAPI is a small Routr resource file whose resources refer to
// each other, listed out of dependency order.
const applyViaAPI = `
- apiVersion: v2beta1
  kind: Agent
  ref: api-agent
  metadata: {name: API agent}
  spec: {username: "2001", domainRef: api-domain, enabled: false}
- apiVersion: v2beta1
  kind: Domain
  ref: api-domain
  metadata: {name: API domain}
  spec:
    accessControlListRef: api-acl
    context:
      domainUri: api.apply.test
      egressPolicies: [{rule: ".*", numberRef: api-number}]
- apiVersion: v2beta1
  kind: AccessControlList
  ref: api-acl
  metadata: {name: API acl}
  spec: {accessControlList: {allow: [10.0.0.0/8], deny: [0.0.0.0/0]}}
- apiVersion: v2beta1
  kind: Number
  ref: api-number
  metadata: {name: API number, geoInfo: {city: X, country: Y, countryIsoCode: US}}
  spec: {trunkRef: api-trunk, location: {telUrl: "tel:+15550100777", aorLink: "sip:2001@api.apply.test"}}
- apiVersion: v2beta1
  kind: Trunk
  ref: api-trunk
  metadata: {name: API trunk}
  spec:
    inbound: {uri: api-trunk.apply.test}
    outbound:
      uris: [{uri: {host: 192.0.2.10, port: 5060, transport: tcp}, priority: 1, weight: 1}]
- apiVersion: v2beta1
  kind: Peer
  ref: api-peer
  metadata: {name: API peer}
  spec: {username: api-peer, aor: "backend:api", loadBalancing: {algorithm: least-sessions}}
`
