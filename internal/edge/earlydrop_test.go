package edge

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
)

// The read filter drops UDP datagrams of banned sources only, and never
// stream data.
func TestEarlyDropBanned(t *testing.T) {
	for _, limitLoopback := range []bool{true, false} {
		g, err := newGuard(GuardOptions{LimitLoopback: limitLoopback}, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		d := &earlyDrop{}
		d.guard.Store(g)
		banned := netip.MustParseAddr("127.0.0.9")
		g.sources[banned] = &sourceState{bannedUntil: time.Now().Add(time.Minute)}
		data := []byte("INVITE sip:x SIP/2.0\r\n\r\n")
		read := func(transport, from string) bool {
			ap := netip.MustParseAddrPort(from)
			var ra net.Addr = net.UDPAddrFromAddrPort(ap)
			if transport != "UDP" {
				ra = net.TCPAddrFromAddrPort(ap)
			}
			out, err := d.filter(sip.TransportReadProps{Transport: transport, RemoteAddr: ra}, data)
			if err != nil {
				t.Fatal(err)
			}
			return len(out) > 0
		}
		wantUDP := !limitLoopback // loopback is exempt unless limited: its ban does not apply
		if got := read("UDP", "127.0.0.9:5060"); got != wantUDP {
			t.Errorf("LimitLoopback=%v: datagram from the banned source passed=%v, want %v", limitLoopback, got, wantUDP)
		}
		if !read("TCP", "127.0.0.9:5060") {
			t.Errorf("stream data from a banned source dropped")
		}
		if !read("UDP", "127.0.0.10:5060") {
			t.Errorf("datagram from another source dropped")
		}
		if want, got := map[bool]float64{true: 1, false: 0}[limitLoopback], counter(t, g.dropped, "banned"); got != want {
			t.Errorf("dropped{banned} = %v, want %v", got, want)
		}
	}
}

// chainReadFilters passes each filter's output to the next and stops at
// the first drop or error.
func TestChainReadFilters(t *testing.T) {
	upper := func(_ sip.TransportReadProps, d []byte) ([]byte, error) { return bytes.ToUpper(d), nil }
	drop := func(_ sip.TransportReadProps, d []byte) ([]byte, error) { return nil, nil }
	fail := func(_ sip.TransportReadProps, d []byte) ([]byte, error) { return nil, errors.New("bad") }
	called := false
	spy := func(_ sip.TransportReadProps, d []byte) ([]byte, error) { called = true; return d, nil }
	p := sip.TransportReadProps{}
	if out, err := chainReadFilters(upper, spy)(p, []byte("ok")); err != nil || string(out) != "OK" || !called {
		t.Fatalf("upper then spy: %q %v (spy called %v)", out, err, called)
	}
	called = false
	if out, err := chainReadFilters(drop, spy)(p, []byte("x")); err != nil || len(out) != 0 || called {
		t.Fatalf("drop then spy: %q %v (spy called %v)", out, err, called)
	}
	if _, err := chainReadFilters(fail, spy)(p, []byte("x")); err == nil || called {
		t.Fatalf("fail then spy: %v (spy called %v)", err, called)
	}
}
