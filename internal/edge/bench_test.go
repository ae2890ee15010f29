package edge

import (
	"bytes"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/routr-go/routr/internal/resources"
)

// The benchmarks below drive a running edge over loopback UDP, one
// request at a time: the cost per op is parsing, the handler chain,
// digest, location, routing, forwarding and sending, as in production,
// plus one client round trip. allocs/op counts the edge's allocations
// too (same process).
//
//	go test -run '^$' -bench 'Edge' -benchmem ./internal/edge/

// benchClient is a raw UDP client that sends prepared requests.
type benchClient struct {
	b    *testing.B
	conn *net.UDPConn
	edge *net.UDPAddr
	port int
	buf  []byte
	out  []byte
}

func newBenchClient(b *testing.B, edge string) *benchClient {
	b.Helper()
	ea, err := net.ResolveUDPAddr("udp", edge)
	if err != nil {
		b.Fatal(err)
	}
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return &benchClient{b: b, conn: c, edge: ea, port: c.LocalAddr().(*net.UDPAddr).Port, buf: make([]byte, 65535)}
}

// roundTrip sends msg and returns the first line of the answer and the
// answer.
func (c *benchClient) roundTrip(msg []byte) (string, []byte) {
	if _, err := c.conn.WriteToUDP(msg, c.edge); err != nil {
		c.b.Fatal(err)
	}
	return c.read()
}

func (c *benchClient) read() (string, []byte) {
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := c.conn.ReadFromUDP(c.buf)
	if err != nil {
		c.b.Fatal(err)
	}
	line, _, _ := bytes.Cut(c.buf[:n], []byte("\r\n"))
	return string(line), c.buf[:n]
}

// request builds a request from user@sip.local to ruri; seq makes the
// branch and CSeq unique. extra are complete header lines.
func (c *benchClient) request(method, ruri, user, callID string, seq int, extra ...string) []byte {
	c.out = c.out[:0]
	c.out = append(c.out, method+" "+ruri+" SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:"...)
	c.out = strconv.AppendInt(c.out, int64(c.port), 10)
	c.out = append(c.out, ";rport;branch=z9hG4bK-bench-"...)
	c.out = strconv.AppendInt(c.out, int64(seq), 10)
	to := ruri
	if method == "REGISTER" {
		to = "sip:" + user + "@sip.local"
	}
	c.out = append(c.out, "\r\nMax-Forwards: 70\r\nFrom: <sip:"+user+"@sip.local>;tag=bench-"+user+
		"\r\nTo: <"+to+">\r\nCall-ID: "+callID+"\r\nCSeq: "...)
	c.out = strconv.AppendInt(c.out, int64(seq), 10)
	c.out = append(c.out, " "+method+"\r\nContact: <sip:"+user+"@127.0.0.1:"...)
	c.out = strconv.AppendInt(c.out, int64(c.port), 10)
	c.out = append(c.out, ">\r\nUser-Agent: bench\r\n"...)
	for _, h := range extra {
		c.out = append(c.out, h+"\r\n"...)
	}
	c.out = append(c.out, "Content-Length: 0\r\n\r\n"...)
	return c.out
}

// authorization answers the challenge in res (401 or 407) for user
// with the test password, as the value of the header to send.
func authorization(b *testing.B, res []byte, method, ruri, user string) string {
	b.Helper()
	m, err := sip.ParseMessage(append([]byte(nil), res...))
	if err != nil {
		b.Fatal(err)
	}
	r := m.(*sip.Response)
	name := "WWW-Authenticate"
	if r.StatusCode == 407 {
		name = "Proxy-Authenticate"
	}
	h := r.GetHeader(name)
	if h == nil {
		b.Fatalf("no %s in\n%s", name, res)
	}
	ch, err := digest.ParseChallenge(h.Value())
	if err != nil {
		b.Fatal(err)
	}
	cred, err := digest.Digest(ch, digest.Options{Method: method, URI: ruri, Username: user, Password: "1234", Count: 1})
	if err != nil {
		b.Fatal(err)
	}
	return cred.String()
}

func benchEdge(b *testing.B) *testEdge {
	// The timers as routr sets them (SIP_TRANSACTION_LINGER's default):
	// process-wide, and benchmarks run one at a time.
	SetTransactionLinger(5 * time.Second)
	set, err := resources.LoadDir("../../config/resources")
	if err != nil {
		b.Fatal(err)
	}
	return startEdgeWith(b, set, func(o *Options) {
		o.Guard.Rate = -1 // one source sends everything
	})
}

func wantStatus(b *testing.B, line, code string) {
	if !strings.HasPrefix(line, "SIP/2.0 "+code) {
		b.Fatalf("got %q, want %s", line, code)
	}
}

// BenchmarkEdgeRegisterChallenge: a REGISTER without credentials,
// answered 401 with a fresh nonce.
func BenchmarkEdgeRegisterChallenge(b *testing.B) {
	te := benchEdge(b)
	c := newBenchClient(b, te.udp)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		line, _ := c.roundTrip(c.request("REGISTER", "sip:sip.local", "1001", "bench-reg-challenge", i+1))
		wantStatus(b, line, "401")
	}
}

// BenchmarkEdgeRegisterAuthenticated: a REGISTER with valid digest
// credentials refreshing a binding, answered 200 with the bindings.
func BenchmarkEdgeRegisterAuthenticated(b *testing.B) {
	te := benchEdge(b)
	c := newBenchClient(b, te.udp)
	line, res := c.roundTrip(c.request("REGISTER", "sip:sip.local", "1001", "bench-reg-auth", 1))
	wantStatus(b, line, "401")
	authz := "Authorization: " + authorization(b, res, "REGISTER", "sip:sip.local", "1001")
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		line, _ := c.roundTrip(c.request("REGISTER", "sip:sip.local", "1001", "bench-reg-auth", i+2, authz, "Expires: 3600"))
		wantStatus(b, line, "200")
	}
}

// BenchmarkEdgeForwardMessage: an authenticated MESSAGE from one agent
// to another: digest, routing, location lookup, forwarding, and the
// callee's 200 relayed back.
func BenchmarkEdgeForwardMessage(b *testing.B) {
	te := benchEdge(b)
	caller := newBenchClient(b, te.udp)
	callee := newBenchClient(b, te.udp)
	// The callee registers.
	line, res := callee.roundTrip(callee.request("REGISTER", "sip:sip.local", "1002", "bench-callee", 1))
	wantStatus(b, line, "401")
	authz := "Authorization: " + authorization(b, res, "REGISTER", "sip:sip.local", "1002")
	line, _ = callee.roundTrip(callee.request("REGISTER", "sip:sip.local", "1002", "bench-callee", 2, authz, "Expires: 3600"))
	wantStatus(b, line, "200")
	// The callee answers everything 200.
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			_ = callee.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, from, err := callee.conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			m, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
			req, ok := m.(*sip.Request)
			if err != nil || !ok {
				continue
			}
			out := sip.NewResponseFromRequest(req, 200, "OK", nil)
			_, _ = callee.conn.WriteToUDP([]byte(out.String()), from)
		}
	}()
	b.Cleanup(func() {
		callee.conn.Close()
		<-done
	})
	const ruri = "sip:1002@sip.local"
	line, res = caller.roundTrip(caller.request("MESSAGE", ruri, "1001", "bench-msg", 1))
	wantStatus(b, line, "407")
	pauthz := "Proxy-Authorization: " + authorization(b, res, "MESSAGE", ruri, "1001")
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		line, _ := caller.roundTrip(caller.request("MESSAGE", ruri, "1001", "bench-msg", i+2, pauthz))
		wantStatus(b, line, "200")
	}
}

// BenchmarkParseRequest is sipgo's parser alone on a REGISTER with
// credentials, for scale.
func BenchmarkParseRequest(b *testing.B) {
	c := &benchClient{port: 5060}
	msg := append([]byte(nil), c.request("REGISTER", "sip:sip.local", "1001", "parse", 1,
		`Authorization: Digest username="1001", realm="sip.local", nonce="abc", uri="sip:sip.local", response="0123456789abcdef0123456789abcdef", algorithm=MD5, qop=auth, nc=00000001, cnonce="xyz"`)...)
	b.ReportAllocs()
	for range b.N {
		if _, err := sip.ParseMessage(msg); err != nil {
			b.Fatal(err)
		}
	}
}
