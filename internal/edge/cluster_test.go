package edge

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/routr-go/routr/internal/auth"
	"github.com/routr-go/routr/internal/calls"
	"github.com/routr-go/routr/internal/events"
	"github.com/routr-go/routr/internal/location"
	"github.com/routr-go/routr/internal/natstest"
	"github.com/routr-go/routr/internal/resources"
	"github.com/routr-go/routr/internal/siptest"
)

var clusterSecret = []byte("cluster-secret-for-tests")

// startClusterEdge starts an edge whose location store is the shared
// bucket on natsURL, with hand-over between instances.
func startClusterEdge(t *testing.T, natsURL, bucket string) *testEdge {
	t.Helper()
	set, err := resources.LoadDir("../../config/resources")
	if err != nil {
		t.Fatal(err)
	}
	dg, err := auth.New(auth.Config{Algorithms: []string{"MD5"}, Secret: []byte("shared-auth-secret")})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx, cancel := context.WithCancel(context.Background())
	loc, err := location.NewJetStream(ctx, location.JetStreamOptions{Conn: nc, Bucket: bucket})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	tr := calls.NewTracker(calls.Options{Sink: rec})
	level := slog.LevelWarn
	if os.Getenv("EDGE_DEBUG") != "" {
		level = slog.LevelDebug
	}
	// The cluster address is the UDP listener, on a port picked up front.
	port := natstest.FreePort(t)
	self := fmt.Sprintf("sip:127.0.0.1:%d;transport=udp", port)
	srv, err := New(Options{
		Listeners:  []Listener{{Protocol: "udp", Addr: fmt.Sprintf("127.0.0.1:%d", port)}, {Protocol: "tcp", Addr: "127.0.0.1:0"}},
		Registrar:  RegistrarOptions{MinExpires: 60 * time.Second, MaxExpires: time.Hour, DefaultExpires: time.Hour},
		Resources:  resources.NewHolder(set),
		Auth:       dg,
		Location:   loc,
		Calls:      tr,
		Events:     rec,
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("edge", self),
		Registerer: prometheus.NewRegistry(),
		Cluster:    ClusterOptions{Self: self, Secret: clusterSecret},
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() { done <- srv.Run(ctx) })
	wg.Go(func() { loc.Run(ctx) })
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatal(err)
	}
	te := &testEdge{srv: srv, rec: rec, udp: srv.Addr("udp").String(), tcp: srv.Addr("tcp").String()}
	te.stop = func() {
		cancel()
		wg.Wait()
	}
	t.Cleanup(te.stop)
	return te
}

// TestCallHandedToTheInstanceHoldingTheConnection registers a phone over
// TCP with edge A and calls it through edge B: B hands the INVITE to A,
// which delivers it on the phone's connection; the dialog's requests go
// both ways, and only B, which routed the call, reports it.
func TestCallHandedToTheInstanceHoldingTheConnection(t *testing.T) {
	srv := natstest.Single(t)
	a := startClusterEdge(t, srv.URL(), "handover")
	b := startClusterEdge(t, srv.URL(), "handover")
	for _, tp := range []string{"tcp", "udp"} {
		t.Run(tp, func(t *testing.T) { handedOverCalls(t, a, b, tp) })
	}
}

func handedOverCalls(t *testing.T, a, b *testEdge, transport string) {
	callee := a.phone(t, transport, "1002")
	mustRegister(t, callee)
	caller := b.phone(t, "udp", "1001")
	waitFor(t, "B sees the binding", func() bool {
		bs, _ := b.srv.opts.Location.Lookup(context.Background(), "sip:1002@sip.local")
		return len(bs) == 1 && bs[0].Transport == transport
	})
	for i, fromCaller := range []bool{true, false} {
		c := siptest.Dial(t, caller, callee, "1002", fmt.Sprintf("handover-%s-%d", transport, i))
		// B doubles its Record-Route (caller side, cluster side); A does
		// when the callee's transport is not the one B used.
		want := 3
		if transport != "udp" {
			want = 4
		}
		if rr := c.Received.GetHeaders("Record-Route"); len(rr) != want {
			t.Fatalf("callee sees %d Record-Routes, want %d", len(rr), want)
		}
		if c.Received.Route() != nil {
			t.Fatalf("flow Route reached the callee: %v", c.Received.Route())
		}
		ok := c.Answer()
		c.Hangup(ok, fromCaller)
		b.wantEvents(t, c.CallID, events.TypeCallStarted, events.TypeCallAnswered, events.TypeCallEnded)
		if got := a.rec.byCall(c.CallID); len(got) != 0 {
			t.Errorf("edge A reported %v for a call B routed", got)
		}
	}
	if res, err := callee.Register(0, ""); err != nil || res.StatusCode != 200 {
		t.Fatalf("unregister: %v %v", res, err)
	}
}

// TestHandOverRefusesForgedAndReplayedTokens sends edge A, as an outsider
// would, INVITEs with a flow Route for a registered TCP phone: a forged
// token, one for another Call-ID, and a valid one sent twice. Only the
// first use of the valid one reaches the phone.
func TestHandOverRefusesForgedAndReplayedTokens(t *testing.T) {
	srv := natstest.Single(t)
	a := startClusterEdge(t, srv.URL(), "forged")
	callee := a.phone(t, "tcp", "1002")
	mustRegister(t, callee)
	bs, _ := a.srv.opts.Location.Lookup(context.Background(), "sip:1002@sip.local")
	if len(bs) != 1 {
		t.Fatalf("bindings %v", bs)
	}
	flow := bs[0]
	outsider := a.phone(t, "udp", "1001")
	self := a.srv.opts.Cluster.self
	send := func(callID, token string) int {
		t.Helper()
		inv := outsider.NewRequest(sip.INVITE, flow.Contact, callID)
		route := sip.Uri{Scheme: "sip", Host: self.Host, Port: self.Port, UriParams: sip.NewParams()}
		route.UriParams.Add("lr", "")
		route.UriParams.Add(flowParam, token)
		inv.PrependHeader(&sip.RouteHeader{Address: route})
		if err := outsider.Send(inv); err != nil {
			t.Fatal(err)
		}
		for {
			res, err := outsider.Response(sip.INVITE, wait)
			if err != nil {
				t.Fatalf("%s: %v", callID, err)
			}
			if res.StatusCode >= 200 || res.StatusCode == 100 {
				if res.StatusCode == 100 {
					return 100
				}
				return res.StatusCode
			}
		}
	}
	tokens := a.srv.opts.Cluster.tokens
	good := tokens.make("replay-1", "tcp", flow.Source)
	forged := "tcp~" + flow.Source + "~9999999999~AAAAAAAAAAAA~AAAAAAAAAAAAAAAAAAAAAA"
	other := &flowTokens{secret: []byte("not-the-cluster-secret"), now: time.Now}
	for _, tc := range []struct {
		name, callID, token string
	}{
		{"no token", "forged-0", ""},
		{"garbage", "forged-1", "x"},
		{"forged", "forged-2", forged},
		{"another secret", "forged-3", other.make("forged-3", "tcp", flow.Source)},
		{"another Call-ID", "forged-4", good},
	} {
		if code := send(tc.callID, tc.token); code != 403 {
			t.Errorf("%s: answered %d, want 403", tc.name, code)
		}
	}
	if _, err := callee.Request(sip.INVITE, 200*time.Millisecond); err == nil {
		t.Fatal("a refused INVITE reached the phone")
	}
	send("replay-1", good)
	got, err := callee.Request(sip.INVITE, wait)
	if err != nil {
		t.Fatalf("the valid token did not deliver: %v", err)
	}
	_ = callee.Send(callee.Reply(got, 486, "Busy Here"))
	if code := send("replay-1", good); code != 403 {
		t.Errorf("replayed token: answered %d, want 403", code)
	}
	if _, err := callee.Request(sip.INVITE, 200*time.Millisecond); err == nil {
		t.Fatal("a replayed INVITE reached the phone")
	}
}

// FuzzFlowToken feeds Route flow tokens as a client could write them: none
// may be accepted unless signed, and none may crash the check.
func FuzzFlowToken(f *testing.F) {
	tokens := &flowTokens{secret: clusterSecret, max: 16, now: time.Now, seen: map[string]int64{}}
	f.Add("call-1", tokens.make("call-1", "tcp", "127.0.0.1:5060"))
	f.Add("call-1", "tcp~127.0.0.1:5060~9999999999~AAAAAAAAAAAA~AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("", "~~~~")
	f.Add("x", "udp~[::1]:5060~1~n~m")
	f.Fuzz(func(t *testing.T, callID, token string) {
		tp, src, err := tokens.check(callID, token)
		if err != nil {
			return
		}
		// Accepted: it must be exactly what make signs.
		parts := strings.Split(token, "~")
		if parts[0] != tp || parts[1] != src || parts[4] != tokens.mac(callID, tp, src, parts[2], parts[3]) {
			t.Fatalf("accepted %q for %q", token, callID)
		}
	})
}

// TestRegisterWhileNATSAway: a REGISTER the shared store cannot keep is
// answered 503 with Retry-After, not stored anywhere.
func TestRegisterWhileNATSAway(t *testing.T) {
	srv := natstest.Single(t)
	a := startClusterEdge(t, srv.URL(), "away")
	srv.Stop()
	p := a.phone(t, "udp", "1002")
	res, err := p.Register(300, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 503 || res.GetHeader("Retry-After") == nil {
		t.Fatalf("REGISTER with NATS away: %d %s, want 503 with Retry-After", res.StatusCode, res.Reason)
	}
}
