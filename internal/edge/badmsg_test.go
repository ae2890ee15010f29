package edge

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// value reads a counter.
func value(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}

// TestSalvageNamesTheProblem: for each RFC 4475 message sipgo cannot
// parse, salvage finds the headers a response needs and names the
// problem the RFC describes.
func TestSalvageNamesTheProblem(t *testing.T) {
	for _, tc := range []struct {
		name       string
		answerable bool
		code       int
		problem    string
	}{
		{"badinv01", true, 400, "malformed Via"},
		{"clerr", true, 400, "Content-Length beyond the end of the message"},
		{"ncl", true, 400, "malformed Content-Length"},
		{"scalar02", true, 400, "malformed CSeq"},
		{"quotbal", true, 400, "malformed To"},
		{"ltgtruri", true, 400, "malformed Request-URI"},
		{"lwsruri", true, 400, "malformed Request-Line"},
		{"lwsstart", true, 400, "malformed Request-Line"},
		{"trws", true, 400, "malformed Request-Line"},
		{"badaspec", true, 400, "malformed To"},
		{"baddn", true, 400, "malformed From"},
		{"novelsc", true, 416, "Unsupported URI Scheme"},
		// Responses are never answered.
		{"scalarlg", false, 0, ""},
		{"bigcode", false, 0, ""},
		// Valid messages have nothing wrong.
		{"esc01", true, 0, ""},
		{"longreq", true, 0, ""},
	} {
		msg, err := os.ReadFile("testdata/rfc4475/" + tc.name + ".dat")
		if err != nil {
			t.Fatal(err)
		}
		s := salvage(msg, true)
		if s.answerable() != tc.answerable || s.code != tc.code || s.problem != tc.problem {
			t.Errorf("%s: answerable %v, %d %q; want %v, %d %q", tc.name, s.answerable(), s.code, s.problem, tc.answerable, tc.code, tc.problem)
		}
	}
}

// TestSalvagedResponse: the response copies Via, From, To, Call-ID and
// CSeq as received and adds a To tag only when there is none.
func TestSalvagedResponse(t *testing.T) {
	msg := "INVITE  sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h:5070;branch=z9hG4bK1\r\nVia: SIP/2.0/TCP x\r\nf: <sip:c@d>;tag=1\r\nt: <sip:a@b>\r\ni: abc\r\nCSeq: 1 INVITE\r\nl: 0\r\n\r\n"
	s := salvage([]byte(msg), true)
	got := string(s.response(400, "Bad Request (malformed Request-Line)", "edge", "t1"))
	want := "SIP/2.0 400 Bad Request (malformed Request-Line)\r\nVia: SIP/2.0/UDP h:5070;branch=z9hG4bK1\r\nVia: SIP/2.0/TCP x\r\nFrom: <sip:c@d>;tag=1\r\nTo: <sip:a@b>;tag=t1\r\nCall-ID: abc\r\nCSeq: 1 INVITE\r\nServer: edge\r\nContent-Length: 0\r\n\r\n"
	if got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
	tagged := salvage([]byte(strings.Replace(msg, "t: <sip:a@b>", "t: <sip:a@b> ; tag = 9", 1)), true)
	if r := string(tagged.response(400, "x", "", "t1")); strings.Contains(r, "t1") {
		t.Fatalf("a To with a tag got another: %q", r)
	}
	ack := salvage([]byte(strings.Replace(strings.Replace(msg, "INVITE ", "ACK ", 1), "1 INVITE", "1 ACK", 1)), true)
	if ack.answerable() {
		t.Fatal("an ACK is answerable")
	}
}

// badRequest is a request sipgo does not parse (two spaces after the
// method, RFC 4475 lwsstart) but whose headers are intact.
func badRequest(transport, branch string) string {
	return "OPTIONS  sip:probe@sip.local SIP/2.0\r\nVia: SIP/2.0/" + transport + " 127.0.0.1:5099;branch=z9hG4bK" + branch + "\r\nFrom: <sip:probe@sip.local>;tag=1\r\nTo: <sip:probe@sip.local>\r\nCall-ID: " + branch + "\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
}

// bigRequest is a valid OPTIONS of about size bytes.
func bigRequest(transport, branch string, size int) string {
	return "OPTIONS sip:sip.local SIP/2.0\r\nVia: SIP/2.0/" + transport + " 127.0.0.1:5099;branch=z9hG4bK" + branch + "\r\nFrom: <sip:probe@sip.local>;tag=1\r\nTo: <sip:probe@sip.local>\r\nCall-ID: " + branch + "\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nX-Padding: " + strings.Repeat("x", size) + "\r\nContent-Length: 0\r\n\r\n"
}

// statusLine reads SIP responses from r until a final one and returns
// its status line.
func statusLine(r *bufio.Reader) (string, error) {
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		line = strings.TrimRight(line, "\r\n")
		var code int
		if _, err := fmt.Sscanf(line, "SIP/2.0 %d", &code); err == nil && code >= 200 {
			return line, nil
		}
	}
}

// TestRejectedMessagesOverEachTransport sends, over every transport, a
// request sipgo cannot parse and one over the size limit: the first is
// answered 400 naming the problem, the second 513. A stream (TCP, TLS)
// is closed after either, having lost its framing; a WebSocket keeps its
// connection after a 513, each message being framed on its own.
func TestRejectedMessagesOverEachTransport(t *testing.T) {
	me := startMultiEdge(t, nil, func(o *Options) {
		o.Limits = Limits{MaxMessageSize: 2000}
	})
	const want400 = "SIP/2.0 400 Bad Request (malformed Request-Line)"
	const want513 = "SIP/2.0 513 Message Too Large"
	counted := func(tp, reason string) float64 {
		return value(me.srv.limits.bad.counter.WithLabelValues(tp, reason, "answered"))
	}

	t.Run("udp", func(t *testing.T) {
		c, err := net.Dial("udp", me.srv.Addr("udp").String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for _, tc := range []struct{ msg, want string }{
			{badRequest("UDP", "u1"), want400},
			{bigRequest("UDP", "u2", 3000), want513},
			// Larger than the read buffer: cut short by the kernel.
			{bigRequest("UDP", "u3", 40000), want513},
		} {
			if _, err := c.Write([]byte(tc.msg)); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(wait))
			buf := make([]byte, 65535)
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("no answer to %.40q: %v", tc.msg, err)
			}
			if got, _, _ := strings.Cut(string(buf[:n]), "\r\n"); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		}
		// Counted after the answer is sent.
		waitFor(t, "counted", func() bool { return counted("udp", "malformed") == 1 && counted("udp", "too_large") == 2 })
	})

	for _, tp := range []string{"tcp", "tls"} {
		t.Run(tp, func(t *testing.T) {
			for i, tc := range []struct{ msg, want string }{
				// A valid request first: the bad one is found behind it in
				// the same read.
				{strings.Replace(bigRequest("TCP", tp+"ok", 10), "X-Padding", "X-Ok", 1) + badRequest("TCP", tp+"1"), want400},
				{bigRequest("TCP", tp+"2", 3000), want513},
			} {
				var c net.Conn
				var err error
				if tp == "tls" {
					// Go's TLS starts with small records; a message cut into
					// several reads has its start gone by the time it is
					// found too large, and then gets no 513 (see Limits).
					c, err = tls.Dial("tcp", me.srv.Addr(tp).String(), &tls.Config{InsecureSkipVerify: true, DynamicRecordSizingDisabled: true})
				} else {
					c, err = net.Dial("tcp", me.srv.Addr(tp).String())
				}
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if _, err := io.WriteString(c, tc.msg); err != nil {
					t.Fatal(err)
				}
				_ = c.SetReadDeadline(time.Now().Add(wait))
				r := bufio.NewReader(c)
				// The valid request's 200 may come before or after the
				// 400, or be lost when the connection closes.
				var got []string
				for {
					line, err := statusLine(r)
					if err != nil {
						if ne, ok := err.(net.Error); ok && ne.Timeout() {
							t.Fatal("connection still open after a framing error")
						}
						break
					}
					got = append(got, line)
				}
				if !slices.Contains(got, tc.want) || i == 1 && len(got) != 1 {
					t.Fatalf("got %q, want %q", got, tc.want)
				}
			}
			waitFor(t, "counted", func() bool { return counted(tp, "malformed") == 1 && counted(tp, "too_large") == 1 })
		})
	}

	for _, tp := range []string{"ws", "wss"} {
		t.Run(tp, func(t *testing.T) {
			d := ws.Dialer{Protocols: []string{"sip"}, TLSConfig: &tls.Config{InsecureSkipVerify: true}}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			c, _, _, err := d.Dial(ctx, tp+"://"+me.srv.Addr(tp).String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			exchange := func(msg string) string {
				t.Helper()
				if err := wsutil.WriteClientText(c, []byte(msg)); err != nil {
					t.Fatal(err)
				}
				_ = c.SetReadDeadline(time.Now().Add(wait))
				for {
					b, err := wsutil.ReadServerText(c)
					if err != nil {
						t.Fatal(err)
					}
					line, _, _ := strings.Cut(string(b), "\r\n")
					var code int
					if _, err := fmt.Sscanf(line, "SIP/2.0 %d", &code); err == nil && code >= 200 {
						return line
					}
				}
			}
			if got := exchange(bigRequest("WS", tp+"2", 3000)); got != want513 {
				t.Errorf("oversized: got %q, want %q", got, want513)
			}
			// Still connected: a valid request is served.
			if got := exchange(bigRequest("WS", tp+"3", 10)); got != "SIP/2.0 200 OK" {
				t.Errorf("after a 513: got %q, want 200", got)
			}
			if got := exchange(badRequest("WS", tp+"1")); got != want400 {
				t.Errorf("malformed: got %q, want %q", got, want400)
			}
			waitFor(t, "counted", func() bool { return counted(tp, "malformed") == 1 && counted(tp, "too_large") == 1 })
		})
	}
}

// TestUnanswerableDropped: bytes with no request line or no headers to
// copy get no answer, are counted, and the edge carries on.
func TestUnanswerableDropped(t *testing.T) {
	te := startEdge(t)
	c, err := net.Dial("udp", te.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, junk := range []string{"hello\r\n\r\n", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "SIP/2.0 200 OK\r\nCSeq: x\r\n\r\n"} {
		if _, err := io.WriteString(c, junk); err != nil {
			t.Fatal(err)
		}
	}
	dropped := te.srv.limits.bad.counter.WithLabelValues("udp", "malformed", "dropped")
	waitFor(t, "junk counted", func() bool { return value(dropped) == 3 })
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := c.Read(make([]byte, 2048)); err == nil {
		t.Fatalf("junk answered with %d bytes", n)
	}
}
