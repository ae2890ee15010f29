package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/routr-go/routr/internal/auth"
	"github.com/routr-go/routr/internal/calls"
	"github.com/routr-go/routr/internal/events"
	"github.com/routr-go/routr/internal/location"
	"github.com/routr-go/routr/internal/resources"
	"github.com/routr-go/routr/internal/siptest"
)

// recorder is an events.Sink that keeps what it is given.
type recorder struct {
	mu  sync.Mutex
	evs []events.Event
}

func (r *recorder) Publish(e events.Event) {
	r.mu.Lock()
	r.evs = append(r.evs, e)
	r.mu.Unlock()
}

// byCall returns the types of the events of one call, in order.
func (r *recorder) byCall(callID string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.evs {
		var body map[string]any
		_ = json.Unmarshal(e.Body, &body)
		if body["callId"] == callID {
			out = append(out, e.Type)
		}
	}
	return out
}

// find returns the body of the last event of type typ matching key=value.
func (r *recorder) find(typ, key, value string) map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.evs) - 1; i >= 0; i-- {
		e := r.evs[i]
		if e.Type != typ {
			continue
		}
		var body map[string]any
		_ = json.Unmarshal(e.Body, &body)
		if fmt.Sprint(body[key]) == value {
			return body
		}
	}
	return nil
}

// waitFor polls until f returns true or a second passes.
func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if f() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

type testEdge struct {
	srv  *Server
	rec  *recorder
	loc  *location.Memory
	udp  string
	tcp  string
	stop func()
}

func startEdge(t *testing.T, algs ...string) *testEdge {
	t.Helper()
	if len(algs) == 0 {
		algs = []string{"MD5", "SHA-256"}
	}
	set, err := resources.LoadDir("../../config/resources")
	if err != nil {
		t.Fatal(err)
	}
	dg, err := auth.New(auth.Config{Algorithms: algs})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	loc := location.NewMemory(location.MemoryOptions{MaxBindings: 1000})
	tr := calls.NewTracker(calls.Options{Sink: rec})
	level := slog.LevelWarn
	if os.Getenv("EDGE_DEBUG") != "" {
		level = slog.LevelDebug
	}
	srv, err := New(Options{
		Listeners:  []Listener{{Protocol: "udp", Addr: "127.0.0.1:0"}, {Protocol: "tcp", Addr: "127.0.0.1:0"}},
		Registrar:  RegistrarOptions{MinExpires: 60 * time.Second, MaxExpires: time.Hour, DefaultExpires: time.Hour},
		Resources:  resources.NewHolder(set),
		Auth:       dg,
		Location:   loc,
		Calls:      tr,
		Events:     rec,
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
		Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	go loc.Run(ctx)
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatal(err)
	}
	te := &testEdge{srv: srv, rec: rec, loc: loc, udp: srv.Addr("udp").String(), tcp: srv.Addr("tcp").String()}
	te.stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("edge did not stop")
		}
	}
	t.Cleanup(te.stop)
	return te
}

func (te *testEdge) phone(t *testing.T, transport, user string) *siptest.Phone {
	t.Helper()
	addr := te.udp
	if transport == "tcp" {
		addr = te.tcp
	}
	p, err := siptest.NewPhone(transport, user, "sip.local", "1234", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func mustRegister(t *testing.T, p *siptest.Phone) {
	t.Helper()
	res, err := p.Register(300, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 {
		t.Fatalf("register %s: got %d %s", p.User, res.StatusCode, res.Reason)
	}
}

func TestRegisterDigest(t *testing.T) {
	te := startEdge(t)
	for _, transport := range []string{"udp", "tcp"} {
		for _, alg := range []string{"MD5", "SHA-256"} {
			t.Run(transport+"/"+alg, func(t *testing.T) {
				p := te.phone(t, transport, "1001")
				req := p.NewRequest(sip.REGISTER, "sip:sip.local", "reg-"+transport+alg)
				req.AppendHeader(sip.NewHeader("Expires", "120"))
				req.AppendHeader(sip.NewHeader("X-Tenant", "acme"))
				if err := p.Send(req); err != nil {
					t.Fatal(err)
				}
				ch, err := p.Response(sip.REGISTER, 2*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				if ch.StatusCode != 401 {
					t.Fatalf("first answer: %d, want 401", ch.StatusCode)
				}
				chs := ch.GetHeaders("WWW-Authenticate")
				if len(chs) != 2 || !strings.Contains(chs[0].Value(), "algorithm=MD5") || !strings.Contains(chs[1].Value(), "algorithm=SHA-256") {
					t.Fatalf("challenges not offered in configured order: %v", chs)
				}
				if !strings.Contains(chs[0].Value(), `realm="sip.local"`) {
					t.Fatalf("realm is not the domain: %s", chs[0].Value())
				}
				authd, err := p.Authorize(req, ch, alg)
				if err != nil {
					t.Fatal(err)
				}
				if err := p.Send(authd); err != nil {
					t.Fatal(err)
				}
				ok, err := p.Response(sip.REGISTER, 2*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				if ok.StatusCode != 200 {
					t.Fatalf("authenticated REGISTER: %d %s", ok.StatusCode, ok.Reason)
				}
				c := ok.Contact()
				if c == nil {
					t.Fatal("200 lists no Contact")
				}
				if exp, _ := c.Params.Get("expires"); exp != "120" {
					t.Fatalf("granted expires = %q, want 120", exp)
				}
				bs, _ := te.loc.Lookup(context.Background(), "sip:1001@sip.local")
				found := false
				for _, b := range bs {
					if b.Source == p.Addr() && b.Transport == transport {
						found = true
					}
				}
				if !found {
					t.Fatalf("no binding from %s over %s in %+v", p.Addr(), transport, bs)
				}
				waitFor(t, "endpoint.registered", func() bool {
					ev := te.rec.find(events.TypeEndpointRegistered, "aor", "sip:1001@sip.local")
					return ev != nil && fmt.Sprint(ev["expires"]) == "120" && fmt.Sprint(ev["extraHeaders"]) == "map[X-Tenant:acme]"
				})
			})
		}
	}
}

func TestRegisterRefusals(t *testing.T) {
	te := startEdge(t)
	cases := []struct {
		name, user, domain, password string
		want                         int
	}{
		{"wrong password", "1001", "sip.local", "nope", 403},
		{"unknown user", "9999", "sip.local", "1234", 403},
		{"unknown domain", "1001", "nowhere.example", "1234", 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := siptest.NewPhone("udp", c.user, c.domain, c.password, te.udp)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			res, err := p.Register(300, "MD5")
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != c.want {
				t.Fatalf("got %d %s, want %d", res.StatusCode, res.Reason, c.want)
			}
		})
	}
}

func TestExpiresClampedAndUnregister(t *testing.T) {
	te := startEdge(t)
	p := te.phone(t, "udp", "1002")
	res, err := p.Register(5, "")
	if err != nil {
		t.Fatal(err)
	}
	if exp, _ := res.Contact().Params.Get("expires"); exp != "60" {
		t.Fatalf("expires 5 granted as %q, want the minimum 60", exp)
	}
	res, err = p.Register(99999, "")
	if err != nil {
		t.Fatal(err)
	}
	if exp, _ := res.Contact().Params.Get("expires"); exp != "3600" {
		t.Fatalf("expires 99999 granted as %q, want the maximum 3600", exp)
	}
	res, err = p.Register(0, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || res.Contact() != nil {
		t.Fatalf("unregister: %d with contacts %v", res.StatusCode, res.GetHeaders("Contact"))
	}
	if n, _ := te.loc.Count(context.Background(), "sip:1002@sip.local"); n != 0 {
		t.Fatalf("%d bindings left after Expires: 0", n)
	}
	waitFor(t, "endpoint.unregistered", func() bool {
		ev := te.rec.find(events.TypeEndpointUnregistered, "aor", "sip:1002@sip.local")
		return ev != nil && ev["reason"] == "unregister"
	})
}

func TestUnregisterWildcard(t *testing.T) {
	te := startEdge(t)
	a := te.phone(t, "udp", "1001")
	b := te.phone(t, "udp", "1001")
	mustRegister(t, a)
	mustRegister(t, b)
	if n, _ := te.loc.Count(context.Background(), "sip:1001@sip.local"); n != 2 {
		t.Fatalf("want 2 contacts for one AOR, have %d", n)
	}
	req := a.NewRequest(sip.REGISTER, "sip:sip.local", "reg-wild")
	req.RemoveHeader("Contact")
	req.AppendHeader(sip.NewHeader("Contact", "*"))
	req.AppendHeader(sip.NewHeader("Expires", "0"))
	if err := a.Send(req); err != nil {
		t.Fatal(err)
	}
	ch, err := a.Response(sip.REGISTER, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	authd, err := a.Authorize(req, ch, "")
	if err != nil {
		t.Fatal(err)
	}
	_ = a.Send(authd)
	res, err := a.Response(sip.REGISTER, 2*time.Second)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("Contact: * answered %v %v", res, err)
	}
	if n, _ := te.loc.Count(context.Background(), "sip:1001@sip.local"); n != 0 {
		t.Fatalf("%d contacts left after Contact: *", n)
	}
}

func TestEdgeAnswersItself(t *testing.T) {
	te := startEdge(t)
	p := te.phone(t, "udp", "1001")
	cases := []struct {
		name   string
		method sip.RequestMethod
		ruri   string
		mf     int
		want   int
	}{
		{"OPTIONS to the edge", sip.OPTIONS, "sip:" + te.udp, 70, 200},
		{"OPTIONS to the domain", sip.OPTIONS, "sip:sip.local", 70, 200},
		{"unknown method", "FOO", "sip:1002@sip.local", 70, 501},
		{"PUBLISH", sip.PUBLISH, "sip:1002@sip.local", 70, 405},
		{"Max-Forwards 0", sip.MESSAGE, "sip:1002@sip.local", 0, 483},
		{"stray CANCEL", sip.CANCEL, "sip:1002@sip.local", 70, 481},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := p.NewRequest(c.method, c.ruri, "self-"+c.name)
			mf := sip.MaxForwardsHeader(c.mf)
			req.ReplaceHeader(&mf)
			if err := p.Send(req); err != nil {
				t.Fatal(err)
			}
			res, err := p.Response(c.method, 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != c.want {
				t.Fatalf("got %d %s, want %d", res.StatusCode, res.Reason, c.want)
			}
			if c.want == 200 && !strings.Contains(res.GetHeader("Allow").Value(), "INVITE") {
				t.Fatal("OPTIONS answer without Allow")
			}
		})
	}
}

func TestLoopDetected(t *testing.T) {
	te := startEdge(t)
	p := te.phone(t, "udp", "1001")
	req := p.NewRequest(sip.MESSAGE, "sip:1002@sip.local", "loop-1")
	// The request claims it already went through this edge unchanged.
	host, port := te.srv.addrs.hostPort("udp", te.srv.Addr("udp").Addr())
	ours := te.srv.via("udp", te.srv.Addr("udp").Addr(), newBranch(req))
	ours.Host, ours.Port = host, port
	req.AppendHeader(ours)
	if err := p.Send(req); err != nil {
		t.Fatal(err)
	}
	res, err := p.Response(sip.MESSAGE, 2*time.Second)
	if err != nil || res.StatusCode != 482 {
		t.Fatalf("got %v %v, want 482", res, err)
	}
	// A spiral (same request, other Request-URI) is no loop.
	spiral := p.NewRequest(sip.MESSAGE, "sip:1003@sip.local", "loop-2")
	spiral.AppendHeader(ours)
	_ = p.Send(spiral)
	res, err = p.Response(sip.MESSAGE, 2*time.Second)
	if err != nil || res.StatusCode == 482 {
		t.Fatalf("spiral answered %v %v", res, err)
	}
}

func TestMalformedAnswered400(t *testing.T) {
	te := startEdge(t)
	p := te.phone(t, "udp", "1001")
	cases := map[string]string{
		"no From":             "MESSAGE sip:1002@sip.local SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bKm1\r\nTo: <sip:1002@sip.local>\r\nCall-ID: m1\r\nCSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
		"CSeq method differs": "MESSAGE sip:1002@sip.local SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bKm2\r\nFrom: <sip:1001@sip.local>;tag=a\r\nTo: <sip:1002@sip.local>\r\nCall-ID: m2\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			if err := p.SendRaw([]byte(fmt.Sprintf(raw, p.Addr()))); err != nil {
				t.Fatal(err)
			}
			m, err := p.Next(2 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			res, ok := m.(*sip.Response)
			if !ok || res.StatusCode != 400 {
				t.Fatalf("got %v, want 400", m)
			}
		})
	}
}

func TestMaxContactsReplacesOldest(t *testing.T) {
	te := startEdge(t)
	set, err := resources.LoadDir("../../config/resources")
	if err != nil {
		t.Fatal(err)
	}
	set.AgentByRef("agent-02").MaxContacts = 2
	te.srv.opts.Resources.Store(set) // the atomic swap publishes the change
	var phones []*siptest.Phone
	for i := 0; i < 3; i++ {
		p := te.phone(t, "udp", "1002")
		mustRegister(t, p)
		phones = append(phones, p)
		time.Sleep(5 * time.Millisecond) // distinct registration times
	}
	bs, _ := te.loc.Lookup(context.Background(), "sip:1002@sip.local")
	if len(bs) != 2 {
		t.Fatalf("%d bindings, want maxContacts=2", len(bs))
	}
	for _, b := range bs {
		if b.Source == phones[0].Addr() {
			t.Fatalf("the oldest contact survived: %+v", bs)
		}
	}
}

func TestRetransmittedRegisterGetsTheSameAnswer(t *testing.T) {
	te := startEdge(t)
	p := te.phone(t, "udp", "1001")
	req := p.NewRequest(sip.REGISTER, "sip:sip.local", "reg-retrans")
	raw := []byte(req.String())
	var nonces []string
	for i := 0; i < 2; i++ {
		if err := p.SendRaw(raw); err != nil {
			t.Fatal(err)
		}
		res, err := p.Response(sip.REGISTER, 2*time.Second)
		if err != nil || res.StatusCode != 401 {
			t.Fatalf("copy %d: %v %v", i, res, err)
		}
		nonces = append(nonces, res.GetHeader("WWW-Authenticate").Value())
	}
	if nonces[0] != nonces[1] {
		t.Fatalf("a retransmission got a new challenge:\n%s\n%s", nonces[0], nonces[1])
	}
}
