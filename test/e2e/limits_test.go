package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestLimitsFromEnvironment runs the binary with SIP_MAX_MESSAGE_SIZE and
// SIP_MAX_TRANSACTIONS set low: an oversized OPTIONS is answered 513, an
// unparsable one 400 naming the problem, and once the transactions are
// all taken a new request gets 503 with the configured Retry-After. The
// metrics count each.
func TestLimitsFromEnvironment(t *testing.T) {
	e := startEdge(t, "SIP_MAX_MESSAGE_SIZE=1000", "SIP_MAX_TRANSACTIONS=2", "SIP_OVERLOAD_RETRY_AFTER=9", "SIP_TRANSACTION_LINGER=60s")
	c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", e.sipPort))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	request := func(method, branch, extra, sp string) string {
		return fmt.Sprintf("%s%ssip:sip.local SIP/2.0\r\nVia: SIP/2.0/UDP %s;rport;branch=z9hG4bK%s\r\nFrom: <sip:probe@sip.local>;tag=1\r\nTo: <sip:sip.local>\r\nCall-ID: %s\r\nCSeq: 1 %s\r\nMax-Forwards: 70\r\n%sContent-Length: 0\r\n\r\n",
			method, sp, c.LocalAddr(), branch, branch, method, extra)
	}
	options := func(branch, extra, sp string) string { return request("OPTIONS", branch, extra, sp) }
	exchange := func(msg string) string {
		t.Helper()
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 8192)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("no answer to %.50q: %v; log:\n%s", msg, err, e.log.String())
			}
			if !strings.HasPrefix(string(buf[:n]), "SIP/2.0 1") {
				return string(buf[:n])
			}
		}
	}
	status := func(res string) string { s, _, _ := strings.Cut(res, "\r\n"); return s }

	if got := status(exchange(options("big", "X-Padding: "+strings.Repeat("x", 1500)+"\r\n", " "))); got != "SIP/2.0 513 Message Too Large" {
		t.Errorf("oversized: %q", got)
	}
	if got := status(exchange(options("bad", "", "  "))); got != "SIP/2.0 400 Bad Request (malformed Request-Line)" {
		t.Errorf("unparsable: %q", got)
	}
	// Answered OPTIONS end at once (the response cache answers their
	// retransmissions), so they take no transaction for long.
	for _, b := range []string{"o1", "o2", "o3"} {
		if got := status(exchange(options(b, "", " "))); got != "SIP/2.0 200 OK" {
			t.Fatalf("OPTIONS %s: %q", b, got)
		}
	}
	// Two INVITEs, challenged and never ACKed, take the two transactions
	// until Timer H; the next request is refused.
	for _, b := range []string{"one", "two"} {
		if got := status(exchange(request("INVITE", b, "", " "))); strings.HasPrefix(got, "SIP/2.0 503") {
			t.Fatalf("INVITE %s under the limit: %q", b, got)
		}
	}
	res := exchange(options("three", "", " "))
	if status(res) != "SIP/2.0 503 Service Unavailable" || !strings.Contains(res, "\r\nRetry-After: 9\r\n") {
		t.Errorf("over the transaction limit: %q", res)
	}

	resp, err := http.Get("http://" + e.httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`routr_sip_rejected_messages_total{action="answered",reason="too_large",transport="udp"} 1`,
		`routr_sip_rejected_messages_total{action="answered",reason="malformed",transport="udp"} 1`,
		`routr_sip_server_transactions_refused_total 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
