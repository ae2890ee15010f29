package edge

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/routr-go/routr/internal/resources"
)

// TestTransactionLimit: with the limit reached (INVITE transactions
// answered with a final response wait for their ACK; non-INVITE ones end
// with their answer, which the response cache keeps), a new request is
// answered 503 with Retry-After and not processed, while an in-dialog BYE
// still goes through so that calls can end.
func TestTransactionLimit(t *testing.T) {
	te := startEdgeWith(t, loadExample(t), func(o *Options) {
		o.Limits = Limits{MaxTransactions: 2, RetryAfter: 7 * time.Second}
	})
	c, err := net.Dial("udp", te.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	send := func(method, branch, toTag string) string {
		t.Helper()
		msg := fmt.Sprintf("%s sip:sip.local SIP/2.0\r\nVia: SIP/2.0/UDP %s;rport;branch=z9hG4bK%s\r\nFrom: <sip:probe@sip.local>;tag=1\r\nTo: <sip:sip.local>%s\r\nCall-ID: %s\r\nCSeq: 1 %s\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
			method, c.LocalAddr(), branch, toTag, branch, method)
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(wait))
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("%s %s: no answer: %v", method, branch, err)
			}
			if code := finalStatus(buf[:n]); code != 0 {
				return string(buf[:n])
			}
		}
	}
	// Answered OPTIONS end at once: they do not count against the limit.
	for _, b := range []string{"o1", "o2", "o3"} {
		if r := send("OPTIONS", b, ""); !strings.HasPrefix(r, "SIP/2.0 200 ") {
			t.Fatalf("OPTIONS %s under the limit: %.40q", b, r)
		}
	}
	// Two unauthenticated INVITEs are challenged and, never ACKed, stay.
	for _, b := range []string{"one", "two"} {
		if r := send("INVITE", b, ""); strings.HasPrefix(r, "SIP/2.0 503 ") {
			t.Fatalf("INVITE %s under the limit: %.40q", b, r)
		}
	}
	r := send("OPTIONS", "three", "")
	if !strings.HasPrefix(r, "SIP/2.0 503 ") || !strings.Contains(r, "\r\nRetry-After: 7\r\n") {
		t.Fatalf("OPTIONS over the limit: %q, want 503 with Retry-After: 7", r)
	}
	if got := value(te.srv.limits.refused); got != 1 {
		t.Errorf("refused counted %v, want 1", got)
	}
	// In-dialog BYE: answered by the edge's dialog handling, not 503.
	if r := send("BYE", "four", ";tag=x"); strings.HasPrefix(r, "SIP/2.0 503 ") {
		t.Fatalf("in-dialog BYE over the limit: %.40q", r)
	}
	if got := te.srv.limits.alive.Load(); got != 2 {
		t.Errorf("%d transactions alive, want 2 (the two INVITEs awaiting their ACK)", got)
	}
}

// TestConnectionsPerSource: one source address gets at most MaxPerSource
// connections; another source is still served.
func TestConnectionsPerSource(t *testing.T) {
	te := startEdgeWith(t, loadExample(t), func(o *Options) {
		o.Connections = ConnLimits{MaxPerSource: 2}
	})
	dialFrom := func(ip string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		c, err := d.Dial("tcp", te.tcp)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	open := func(c net.Conn) bool {
		_ = c.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		ne, ok := err.(net.Error)
		return ok && ne.Timeout()
	}
	a, b := dialFrom("127.0.0.1"), dialFrom("127.0.0.1")
	waitFor(t, "two connections", func() bool { return te.srv.conns.Open() == 2 })
	if extra := dialFrom("127.0.0.1"); open(extra) {
		t.Fatal("a third connection from one source was kept")
	}
	if other := dialFrom("127.0.0.2"); !open(other) {
		t.Fatal("a connection from another source was refused")
	}
	if !open(a) || !open(b) {
		t.Fatal("the first two connections were closed")
	}
	if got := value(te.srv.conns.refused.WithLabelValues("source")); got != 1 {
		t.Errorf("refused per source counted %v, want 1", got)
	}
	// A place taken is given back on close.
	a.Close()
	waitFor(t, "place released", func() bool { return te.srv.conns.Open() == 2 })
	if again := dialFrom("127.0.0.1"); !open(again) {
		t.Fatal("no place after a connection closed")
	}
}

func loadExample(t *testing.T) *resources.Set {
	t.Helper()
	set, err := resources.LoadDir("../../config/resources")
	if err != nil {
		t.Fatal(err)
	}
	return set
}
