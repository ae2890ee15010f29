package edge

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// torture is one message of RFC 4475 (SIP Torture Test Messages), kept
// byte for byte in testdata/rfc4475/<name>.dat, and what the edge does
// with it. docs/torture.md lists the same table with the reasons.
type torture struct {
	name    string
	section string
	valid   bool // as RFC 4475 classifies it
	// udp is the final status the edge answers with over UDP, 0 when it
	// sends nothing (a message sipgo cannot parse, a response matching no
	// transaction, or an answer too large for sipgo to send over UDP).
	udp int
	// tcp is the same over TCP, with the top Via's transport written as
	// TCP (same length, so Content-Length still holds); noTCP for a
	// message whose framing depends on the datagram (dblreq, clerr, ncl,
	// mcl01, inv2543) or that never parses.
	tcp int
}

const noTCP = -1

var tortures = []torture{
	// 3.1.1 valid messages
	{"wsinv", "3.1.1.1", true, 400, 400},
	{"intmeth", "3.1.1.2", true, 501, 501},
	{"esc01", "3.1.1.3", true, 403, 403},
	{"escnull", "3.1.1.4", true, 401, 401},
	{"esc02", "3.1.1.5", true, 501, 501},
	{"lwsdisp", "3.1.1.6", true, 403, 403},
	{"longreq", "3.1.1.7", true, 403, 403},
	{"dblreq", "3.1.1.8", true, 401, noTCP},
	{"semiuri", "3.1.1.9", true, 403, 403},
	{"transports", "3.1.1.10", true, 403, 403},
	{"mpart01", "3.1.1.11", true, 403, 403},
	{"unreason", "3.1.1.12", true, 0, noTCP},
	{"noreason", "3.1.1.13", true, 0, noTCP},
	// 3.1.2 invalid messages
	{"badinv01", "3.1.2.1", false, 400, 400},
	{"clerr", "3.1.2.2", false, 400, noTCP},
	{"ncl", "3.1.2.3", false, 400, 400},
	{"scalar02", "3.1.2.4", false, 400, 400},
	{"scalarlg", "3.1.2.5", false, 0, noTCP},
	{"quotbal", "3.1.2.6", false, 400, 400},
	{"ltgtruri", "3.1.2.7", false, 400, 400},
	{"lwsruri", "3.1.2.8", false, 400, 400},
	{"lwsstart", "3.1.2.9", false, 400, 400},
	{"trws", "3.1.2.10", false, 400, 400},
	{"escruri", "3.1.2.11", false, 400, 400},
	{"baddate", "3.1.2.12", false, 403, 403},
	{"regbadct", "3.1.2.13", false, 401, 401},
	{"badaspec", "3.1.2.14", false, 400, 400},
	{"baddn", "3.1.2.15", false, 400, noTCP},
	{"badvers", "3.1.2.16", false, 505, 505},
	{"mismatch01", "3.1.2.17", false, 400, 400},
	{"mismatch02", "3.1.2.18", false, 400, 400},
	{"bigcode", "3.1.2.19", false, 0, noTCP},
	// 3.2 transaction layer semantics
	{"badbranch", "3.2.1", true, 403, 403},
	// 3.3 application layer semantics
	{"insuf", "3.3.1", false, 400, 400},
	{"unkscm", "3.3.2", false, 416, 416},
	{"novelsc", "3.3.3", false, 416, 416},
	{"unksm2", "3.3.4", true, 401, 401},
	{"bext01", "3.3.5", false, 420, 420},
	{"invut", "3.3.6", true, 403, 403},
	{"regaut01", "3.3.7", true, 401, 401},
	{"multi01", "3.3.8", false, 400, 400},
	{"mcl01", "3.3.9", false, 400, noTCP},
	{"bcast", "3.3.10", false, 0, noTCP},
	{"zeromf", "3.3.11", true, 483, 483},
	{"cparam01", "3.3.12", true, 401, 401},
	{"cparam02", "3.3.13", true, 401, 401},
	{"regescrt", "3.3.14", false, 401, 401},
	{"sdp01", "3.3.15", true, 403, 403},
	// 3.4 backward compatibility
	{"inv2543", "3.4.1", true, 400, noTCP},
}

// TestTortureMessages sends every RFC 4475 message to the edge as it is
// written in the RFC and checks the answer, and that the edge still
// answers an OPTIONS afterwards. Each message gets its own edge: several
// share a branch and sent-by (baddate and mismatch01), so one would be
// taken for a retransmission of another's transaction.
func TestTortureMessages(t *testing.T) {
	if len(tortures) != 49 {
		t.Fatalf("%d torture messages, RFC 4475 has 49", len(tortures))
	}
	for _, tc := range tortures {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			te := startEdge(t)
			msg, err := os.ReadFile("testdata/rfc4475/" + tc.name + ".dat")
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []int{tc.udp, tc.tcp} {
				// 501 is what RFC 4475 asks for an unknown method.
				if tc.valid && want >= 500 && want != 501 {
					t.Errorf("valid message answered %d", want)
				}
			}
			if got := sendUDP(t, te.udp, msg, tc.udp == 0); got != tc.udp {
				t.Errorf("udp: got %d, want %d", got, tc.udp)
			}
			if tc.tcp != noTCP {
				tcpEdge := te
				if !topViaBranch(msg) {
					// A request without an RFC 3261 branch in its top Via
					// (longreq) is keyed by its headers: on the same edge
					// the TCP copy would be taken for a retransmission.
					tcpEdge = startEdge(t)
				}
				if got := sendTCP(t, tcpEdge.tcp, viaTCP(msg)); got != tc.tcp {
					t.Errorf("tcp: got %d, want %d", got, tc.tcp)
				}
			}
			opts := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;rport;branch=z9hG4bKalive\r\nFrom: <sip:probe@sip.local>;tag=1\r\nTo: <sip:%s>\r\nCall-ID: torture-alive\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", te.udp, te.udp)
			if got := sendUDP(t, te.udp, []byte(opts), false); got != 200 {
				t.Errorf("OPTIONS afterwards: got %d, want 200", got)
			}
		})
	}
}

// sendUDP sends msg from the port its top Via names (UDP responses go to
// the source address and the Via port, RFC 3261 18.2.2), on a random
// loopback address so that no other test holds that port, and returns the
// first final status that comes back, or 0. When silence is expected it
// waits less.
func sendUDP(t *testing.T, edge string, msg []byte, silence bool) int {
	t.Helper()
	port := 5060
	if m, err := sip.ParseMessage(msg); err == nil {
		if v := m.Via(); v != nil && v.Port > 0 {
			port = v.Port
		}
	}
	var c *net.UDPConn
	for i := 0; ; i++ {
		ip := net.IPv4(127, byte(1+rand.IntN(250)), byte(rand.IntN(256)), byte(1+rand.IntN(250)))
		var err error
		c, err = net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: port})
		if err == nil {
			break
		}
		if i == 10 {
			t.Fatal(err)
		}
	}
	defer c.Close()
	dst, err := net.ResolveUDPAddr("udp", edge)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteToUDP(msg, dst); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	wait := 2 * time.Second
	if silence {
		wait = 300 * time.Millisecond
	}
	deadline := time.Now().Add(wait)
	for {
		_ = c.SetReadDeadline(deadline)
		n, _, err := c.ReadFromUDP(buf)
		if err != nil {
			return 0
		}
		if code := finalStatus(buf[:n]); code != 0 {
			return code
		}
	}
}

// sendTCP sends msg on a new connection and returns the first final
// status read back, or 0.
func sendTCP(t *testing.T, edge string, msg []byte) int {
	t.Helper()
	c, err := net.Dial("tcp", edge)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return 0
		}
		// Status lines only; headers and bodies of responses are skipped.
		var ver string
		var code int
		if n, _ := fmt.Sscanf(line, "%s %d", &ver, &code); n == 2 && ver == "SIP/2.0" && code >= 200 {
			return code
		}
	}
}

// viaTCP rewrites the first "SIP/2.0/UDP" of msg, the top Via's
// transport in every torture message, as "SIP/2.0/TCP" (sipgo answers
// over the transport the top Via names), and makes its branch differ from
// the UDP copy's, which would otherwise be taken for a retransmission.
// Only headers change, so Content-Length still holds.
func viaTCP(msg []byte) []byte {
	msg = bytes.Replace(msg, []byte("SIP/2.0/UDP"), []byte("SIP/2.0/TCP"), 1)
	return bytes.Replace(msg, []byte("branch=z9hG4bK"), []byte("branch=z9hG4bKtcp"), 1)
}

// topViaBranch reports whether the first Via header line of msg carries
// an RFC 3261 branch.
func topViaBranch(msg []byte) bool {
	for _, l := range bytes.Split(msg, []byte("\r\n"))[1:] {
		name, _, ok := bytes.Cut(l, []byte(":"))
		if n := strings.ToLower(strings.TrimSpace(string(name))); ok && (n == "via" || n == "v") {
			return bytes.Contains(l, []byte("branch=z9hG4bK"))
		}
	}
	return false
}

// finalStatus reads the status line only: a 400 copies the sender's
// malformed headers (RFC 4475 quotbal, scalar02), which sipgo would not
// parse back.
func finalStatus(b []byte) int {
	var code int
	if n, _ := fmt.Sscanf(string(b), "SIP/2.0 %d ", &code); n == 1 && code >= 200 {
		return code
	}
	return 0
}
