package edge

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/routr-go/routr/internal/auth"
	"github.com/routr-go/routr/internal/calls"
	"github.com/routr-go/routr/internal/location"
	"github.com/routr-go/routr/internal/resources"
	"github.com/routr-go/routr/internal/siptest"
)

// syncBuffer is a log sink tests read while the edge writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) count(sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), sub)
}

// startGuardedEdge starts a UDP edge with the given guard options and
// returns it with its log. The example resources trust 127.0.0.1 (trunk-01
// sends from there); untrusted forgets that, so that loopback stands for
// any source.
func startGuardedEdge(t *testing.T, g GuardOptions, untrusted ...bool) (*Server, string, *syncBuffer) {
	t.Helper()
	set, err := resources.LoadDir("../../config/resources")
	if err != nil {
		t.Fatal(err)
	}
	dg, err := auth.New(auth.Config{Algorithms: []string{"MD5"}})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	loc := location.NewMemory(location.MemoryOptions{MaxBindings: 100})
	srv, err := New(Options{
		Listeners:  []Listener{{Protocol: "udp", Addr: "127.0.0.1:0"}},
		Registrar:  RegistrarOptions{MinExpires: time.Minute, MaxExpires: time.Hour, DefaultExpires: time.Hour},
		Resources:  resources.NewHolder(set),
		Auth:       dg,
		Location:   loc,
		Calls:      calls.NewTracker(calls.Options{}),
		Logger:     slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Registerer: prometheus.NewRegistry(),
		Guard:      g,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(untrusted) > 0 && untrusted[0] {
		srv.guard.trusted = nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	go loc.Run(ctx)
	<-srv.Ready()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return srv, srv.Addr("udp").String(), logs
}

func counter(t *testing.T, c *prometheus.CounterVec, label string) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.WithLabelValues(label).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// options sends an OPTIONS to the edge with the given User-Agent and
// returns the final status, or 0 when nothing came back in wait.
func options(t *testing.T, p *siptest.Phone, edge, ua string, wait time.Duration) int {
	t.Helper()
	req := p.NewRequest(sip.OPTIONS, "sip:"+edge, sip.GenerateBranch())
	if ua != "" {
		req.ReplaceHeader(sip.NewHeader("User-Agent", ua))
	}
	if err := p.Send(req); err != nil {
		t.Fatal(err)
	}
	res, err := p.Response(sip.OPTIONS, wait)
	if err != nil {
		return 0
	}
	return res.StatusCode
}

func newPhone(t *testing.T, user, password, edge string) *siptest.Phone {
	t.Helper()
	p, err := siptest.NewPhone("udp", user, "sip.local", password, edge)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func TestGuardDropsScanners(t *testing.T) {
	srv, edge, logs := startGuardedEdge(t, GuardOptions{})
	p := newPhone(t, "1001", "1234", edge)
	for _, ua := range []string{"friendly-scanner", "sipvicious", "SIPCLI/v1.63", "VaxSIPUserAgent/3.1", "pplsip", "iWar"} {
		if got := options(t, p, edge, ua, 200*time.Millisecond); got != 0 {
			t.Errorf("User-Agent %q: answered %d, want silence", ua, got)
		}
	}
	if got := options(t, p, edge, "Linphone/5.2", time.Second); got != 200 {
		t.Errorf("a phone after the scanners: got %d, want 200", got)
	}
	if got := counter(t, srv.guard.dropped, "scanner"); got != 6 {
		t.Errorf("routr_guard_dropped_total{reason=scanner} = %v, want 6", got)
	}
	if n := logs.count("SIP scanner"); n != 1 {
		t.Errorf("scanner logged %d times, want once per source", n)
	}
}

func TestGuardScannerListConfigurable(t *testing.T) {
	_, edge, _ := startGuardedEdge(t, GuardOptions{ScannerAgents: []string{"evil-bot"}})
	p := newPhone(t, "1001", "1234", edge)
	if got := options(t, p, edge, "friendly-scanner", time.Second); got != 200 {
		t.Errorf("friendly-scanner not in the list: got %d, want 200", got)
	}
	if got := options(t, p, edge, "Evil-Bot 1.0", 200*time.Millisecond); got != 0 {
		t.Errorf("listed agent: got %d, want silence", got)
	}
}

func TestGuardRateLimitBans(t *testing.T) {
	srv, edge, logs := startGuardedEdge(t, GuardOptions{Rate: 1, Burst: 5, BanFor: time.Minute, LimitLoopback: true}, true)
	p := newPhone(t, "1001", "1234", edge)
	for i := 0; i < 5; i++ {
		if got := options(t, p, edge, "", time.Second); got != 200 {
			t.Fatalf("request %d within the burst: got %d, want 200", i+1, got)
		}
	}
	for i := 0; i < 3; i++ {
		if got := options(t, p, edge, "", 200*time.Millisecond); got != 0 {
			t.Fatalf("request %d over the burst: got %d, want silence", i+6, got)
		}
	}
	if got := counter(t, srv.guard.bans, "rate"); got != 1 {
		t.Errorf("routr_guard_bans_total{kind=rate} = %v, want 1", got)
	}
	if got := counter(t, srv.guard.dropped, "banned"); got != 2 {
		t.Errorf("routr_guard_dropped_total{reason=banned} = %v, want 2", got)
	}
	if n := logs.count("source banned"); n != 1 {
		t.Errorf("ban logged %d times, want once", n)
	}
}

func TestGuardLoopbackExemptByDefault(t *testing.T) {
	_, edge, _ := startGuardedEdge(t, GuardOptions{Rate: 1, Burst: 2})
	p := newPhone(t, "1001", "1234", edge)
	for i := 0; i < 6; i++ {
		if got := options(t, p, edge, "", time.Second); got != 200 {
			t.Fatalf("request %d from loopback: got %d, want 200", i+1, got)
		}
	}
}

func TestGuardTrunkSourcesExempt(t *testing.T) {
	// trunk-01's outbound URI is 127.0.0.1:5080: its address is trusted
	// even with loopback limited.
	_, edge, _ := startGuardedEdge(t, GuardOptions{Rate: 1, Burst: 2, LimitLoopback: true})
	p := newPhone(t, "1001", "1234", edge)
	for i := 0; i < 6; i++ {
		if got := options(t, p, edge, "", time.Second); got != 200 {
			t.Fatalf("request %d from a trunk's address: got %d, want 200", i+1, got)
		}
	}
}

func TestTrustedPrefixes(t *testing.T) {
	set, err := resources.LoadDir("../../config/resources")
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(trustedPrefixes(set))
	// acl-01 allows 127.0.0.0/8 and 10.0.0.0/8 too: rules of /8 and
	// wider are left out.
	if want := "[172.16.0.0/12 192.168.0.0/16 127.0.0.1/32]"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestGuardAuthFailures(t *testing.T) {
	srv, edge, logs := startGuardedEdge(t, GuardOptions{MaxAuthFailures: 3, BanFor: time.Minute, LimitLoopback: true}, true)
	bad := newPhone(t, "1001", "wrong", edge)
	for i := 0; i < 4; i++ {
		res, err := bad.Register(300, "")
		if err != nil {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
		if res.StatusCode != 403 {
			t.Fatalf("attempt %d: got %d, want 403", i+1, res.StatusCode)
		}
	}
	// The fourth failure banned the source: it is no longer answered.
	if got := options(t, bad, edge, "", 200*time.Millisecond); got != 0 {
		t.Errorf("banned source: got %d, want silence", got)
	}
	if got := counter(t, srv.guard.bans, "auth_source"); got != 1 {
		t.Errorf("routr_guard_bans_total{kind=auth_source} = %v, want 1", got)
	}
	if got := counter(t, srv.guard.bans, "auth_user"); got != 1 {
		t.Errorf("routr_guard_bans_total{kind=auth_user} = %v, want 1", got)
	}
	if n := logs.count("too many failed authentications"); n != 2 {
		t.Errorf("auth bans logged %d times, want 2 (source, user)", n)
	}
}

func TestGuardAuthFailuresBanUser(t *testing.T) {
	// Loopback is exempt from source bans, so this shows the user ban
	// alone: once banned, even the right password gets 403.
	_, edge, _ := startGuardedEdge(t, GuardOptions{MaxAuthFailures: 2, BanFor: time.Minute})
	bad := newPhone(t, "1001", "wrong", edge)
	for i := 0; i < 3; i++ {
		if res, err := bad.Register(300, ""); err != nil || res.StatusCode != 403 {
			t.Fatalf("attempt %d: %v %v", i+1, res, err)
		}
	}
	good := newPhone(t, "1001", "1234", edge)
	if res, err := good.Register(300, ""); err != nil || res.StatusCode != 403 {
		t.Fatalf("right password during the user's ban: %v %v, want 403", res, err)
	}
	other := newPhone(t, "1002", "1234", edge)
	if res, err := other.Register(300, ""); err != nil || res.StatusCode != 200 {
		t.Fatalf("another user: %v %v, want 200", res, err)
	}
}

func TestGuardBoundedSources(t *testing.T) {
	g, err := newGuard(GuardOptions{MaxSources: 10, Rate: 1, Burst: 1, LimitLoopback: true}, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1000; i++ {
		a := netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
		g.authFailed(a, fmt.Sprintf("user%d@sip.local", i))
		r := &Request{Request: sip.NewRequest(sip.OPTIONS, sip.Uri{Host: "sip.local"}), Src: netip.AddrPortFrom(a, 5060)}
		g.admit(r)
		g.admit(r) // over the burst: banned
	}
	if len(g.sources) > 10 || len(g.users) > 10 {
		t.Fatalf("tracked %d sources and %d users, bound is 10", len(g.sources), len(g.users))
	}
}

func TestGuardFloodSparesOtherSources(t *testing.T) {
	srv, edge, _ := startGuardedEdge(t, GuardOptions{Rate: 50, Burst: 100, BanFor: time.Minute, LimitLoopback: true}, true)
	flooder, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 3)})
	if err != nil {
		t.Skipf("no second loopback address: %v", err)
	}
	defer flooder.Close()
	dst, err := net.ResolveUDPAddr("udp", edge)
	if err != nil {
		t.Fatal(err)
	}
	port := flooder.LocalAddr().(*net.UDPAddr).Port
	for i := 0; i < 2000; i++ {
		msg := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:%d;rport;branch=z9hG4bKflood%d\r\nFrom: <sip:flood@sip.local>;tag=1\r\nTo: <sip:%s>\r\nCall-ID: flood-%d\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", edge, port, i, edge, i)
		if _, err := flooder.WriteToUDP([]byte(msg), dst); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the flooder's ban", func() bool { return counter(t, srv.guard.bans, "rate") == 1 })
	p := newPhone(t, "1001", "1234", edge)
	res, err := p.Register(300, "")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("agent on another source during the flood: %v %v, want 200", res, err)
	}
}
