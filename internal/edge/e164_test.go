package edge

import (
	"context"
	"log/slog"
	"os"
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

// startEdgeWith starts an edge on loopback serving set, with options
// startEdge does not set given by opt.
func startEdgeWith(t testing.TB, set *resources.Set, opt func(*Options)) *testEdge {
	t.Helper()
	dg, err := auth.New(auth.Config{Algorithms: []string{"MD5"}})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	loc := location.NewMemory(location.MemoryOptions{MaxBindings: 1000})
	o := Options{
		Listeners:  []Listener{{Protocol: "udp", Addr: "127.0.0.1:0"}, {Protocol: "tcp", Addr: "127.0.0.1:0"}},
		Registrar:  RegistrarOptions{MinExpires: 60 * time.Second, MaxExpires: time.Hour, DefaultExpires: time.Hour},
		Resources:  resources.NewHolder(set),
		Auth:       dg,
		Location:   loc,
		Calls:      calls.NewTracker(calls.Options{Sink: rec}),
		Events:     rec,
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Registerer: prometheus.NewRegistry(),
	}
	opt(&o)
	srv, err := New(o)
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
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("edge did not stop")
		}
	})
	return &testEdge{srv: srv, rec: rec, loc: loc, udp: srv.Addr("udp").String(), tcp: srv.Addr("tcp").String()}
}

func TestEnforceE164(t *testing.T) {
	re := withRoutingResources(t, startEdgeWith(t, nil, func(o *Options) { o.EnforceE164 = true }))
	a := re.phone(t, "udp", "1001")
	c := siptest.Dial(t, a, re.primary, "4930123456", "e164-out")
	got := c.Received
	if got.Recipient.User != "+4930123456" || got.To().Address.User != "+4930123456" {
		t.Fatalf("Request-URI %s, To %s: want +4930123456", got.Recipient.String(), got.To().Address.String())
	}
	if got.From().Address.User != "1001" {
		t.Fatalf("an extension was rewritten: From %s", got.From().Address.String())
	}
	_ = re.primary.Send(re.primary.Reply(got, 486, "Busy Here"))
	if r, err := a.Response(sip.INVITE, wait); err != nil || r.StatusCode != 486 {
		t.Fatalf("caller got %v %v", r, err)
	}
	re.wantEvents(t, "e164-out", events.TypeCallStarted, events.TypeCallEnded)
}
