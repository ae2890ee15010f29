package edge

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/routr-go/routr/internal/resources"
	"github.com/routr-go/routr/internal/siptest"
)

// TestAdvertisedAddress checks which address the edge writes into Via and
// Record-Route for a peer: the external address for peers outside the
// local networks, the listener's or the interface's address inside.
func TestAdvertisedAddress(t *testing.T) {
	a := newAdvertiser([]string{"203.0.113.10"}, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	a.setListeners([]boundListener{
		{"udp", netip.MustParseAddrPort("0.0.0.0:5060")},
		{"wss", netip.MustParseAddrPort("10.1.2.3:5063")},
	})
	cases := []struct {
		transport, peer string
		host            string
		port            int
	}{
		{"udp", "198.51.100.7", "203.0.113.10", 5060},
		{"wss", "198.51.100.7", "203.0.113.10", 5063},
		{"wss", "10.9.9.9", "10.1.2.3", 5063},
		{"udp", "127.0.0.1", "127.0.0.1", 5060},
		{"WSS", "10.9.9.9", "10.1.2.3", 5063},
	}
	for _, c := range cases {
		h, p := a.hostPort(c.transport, netip.MustParseAddr(c.peer))
		if h != c.host || p != c.port {
			t.Errorf("%s to %s: %s:%d, want %s:%d", c.transport, c.peer, h, p, c.host, c.port)
		}
	}
	// A local peer of a listener bound to every interface gets an
	// interface address, never the external one.
	if h, _ := a.hostPort("udp", netip.MustParseAddr("10.9.9.9")); h == "203.0.113.10" {
		t.Errorf("local peer got the external address")
	}

	withPort := newAdvertiser([]string{"203.0.113.10:5080"}, nil)
	withPort.setListeners([]boundListener{{"udp", netip.MustParseAddrPort("0.0.0.0:5060")}})
	if h, p := withPort.hostPort("udp", netip.MustParseAddr("198.51.100.7")); h != "203.0.113.10" || p != 5080 {
		t.Errorf("external host:port: %s:%d", h, p)
	}

	for _, c := range []struct {
		host string
		port int
		want bool
	}{
		{"203.0.113.10", 5060, true},
		{"203.0.113.10", 5063, true},
		{"203.0.113.10", 9999, false},
		{"10.1.2.3", 5063, true},
		{"127.0.0.1", 5060, true},
		{"198.51.100.7", 5060, false},
	} {
		if got := a.isOurs(c.host, c.port); got != c.want {
			t.Errorf("isOurs(%s, %d) = %v", c.host, c.port, got)
		}
	}
}

// nonLoopbackIPv4 is an address of this machine's that is not loopback,
// for a test that needs a second network. Tests here send traffic to
// loopback only unless asked: ROUTR_TEST_OUTSIDE_IP names the address to
// use (an address of this machine's, e.g. of a veth in a network
// namespace made for the test), "auto" takes the first one found.
func nonLoopbackIPv4(t *testing.T) string {
	t.Helper()
	want := os.Getenv("ROUTR_TEST_OUTSIDE_IP")
	if want == "" {
		t.Skip("set ROUTR_TEST_OUTSIDE_IP to run: this test sends SIP to a non-loopback address of this machine")
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		p, err := netip.ParsePrefix(a.String())
		if err == nil && p.Addr().Is4() && !p.Addr().IsLoopback() && (want == "auto" || p.Addr().String() == want) {
			return p.Addr().String()
		}
	}
	t.Skip("no such non-loopback IPv4 interface: " + want)
	return ""
}

// TestNATCallAcrossNetworks calls from a WSS phone on loopback (a local
// network) to a UDP phone on another interface that the configuration
// puts outside the local networks: the callee sees the external address
// in the edge's Via and Record-Route, the caller the local one, the
// Record-Route is doubled, and the callee's BYE finds its way back.
func TestNATCallAcrossNetworks(t *testing.T) {
	outside := nonLoopbackIPv4(t)
	// The example domain's ACL lets in private networks only: let the
	// outside phone in too.
	dir := t.TempDir()
	ents, err := os.ReadDir("../../config/resources")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("../../config/resources", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "acl.yaml" {
			b = []byte(strings.Replace(string(b), "- 127.0.0.0/8", "- 127.0.0.0/8\n        - "+outside+"/32", 1))
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	set, err := resources.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	me := startMultiEdge(t, nil, func(o *Options) {
		o.Resources = resources.NewHolder(set)
		for i := range o.Listeners {
			o.Listeners[i].Addr = "0.0.0.0:0"
		}
		o.ExternalAddrs = []string{"203.0.113.10"}
		o.Localnets = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	})
	for _, callerTP := range []string{"wss", "udp"} {
		t.Run(callerTP, func(t *testing.T) {
			a := me.phoneOver(t, callerTP, "1001", false)
			edgeOutside := netip.AddrPortFrom(netip.MustParseAddr(outside), me.srv.Addr("udp").Port()).String()
			b, err := siptest.NewPhoneWith("udp", "1002", "sip.local", "1234", edgeOutside, siptest.Options{LocalIP: outside})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(b.Close)
			mustRegister(t, b)
			c := siptest.Dial(t, a, b, "1002", "nat-"+callerTP)
			if v := c.Received.Via(); v.Host != "203.0.113.10" {
				t.Fatalf("callee outside sees the edge's Via %s, want the external address", v)
			}
			rrs := c.Received.GetHeaders("Record-Route")
			if len(rrs) != 2 {
				t.Fatalf("Record-Route not doubled across networks: %v", rrs)
			}
			out, in := rrs[0].(*sip.RecordRouteHeader).Address, rrs[1].(*sip.RecordRouteHeader).Address
			if out.Host != "203.0.113.10" || in.Host != "127.0.0.1" {
				t.Fatalf("Record-Route %s, %s: want the external address facing the callee, loopback facing the caller", out.String(), in.String())
			}
			if tp, _ := in.UriParams.Get("transport"); tp != callerTP {
				t.Fatalf("caller's Record-Route %s, want transport=%s", in.String(), callerTP)
			}
			ok := c.Answer()
			c.Hangup(ok, false)
		})
	}
}
