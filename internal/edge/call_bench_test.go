package edge

import (
	"bytes"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The call benchmarks play a whole call through a running edge over
// loopback UDP, the ladder the bench's sipp scenarios play: one op is
// one call, so allocs/op and callgrind's instructions/op are per call
// (the raw clients' own work included, a small constant).
//
//	go test -run '^$' -bench 'EdgeCall|EdgeTrunkCall' -benchmem ./internal/edge/
//	bench/callgrind.sh ./internal/edge EdgeTrunkCall EdgeCallChallenged

// callee is a raw UDP user agent that answers what the edge sends it.
type callee struct {
	*benchClient
	contact string
}

func newCallee(b *testing.B, te *testEdge) *callee {
	c := &callee{benchClient: newBenchClient(b, te.udp)}
	c.contact = "<sip:1001@127.0.0.1:" + strconv.Itoa(c.port) + ">"
	// The callee registers as agent 1001.
	line, res := c.roundTrip(c.request("REGISTER", "sip:sip.local", "1001", "bench-callee", 1))
	wantStatus(b, line, "401")
	authz := "Authorization: " + authorization(b, res, "REGISTER", "sip:sip.local", "1001")
	line, _ = c.roundTrip(c.request("REGISTER", "sip:sip.local", "1001", "bench-callee", 2, authz, "Expires: 3600"))
	wantStatus(b, line, "200")
	return c
}

// expect reads the next request and checks its method, skipping the
// INVITE again (the edge retransmits it when the answer took over T1,
// as under valgrind).
func (c *callee) expect(method string) []byte {
	for {
		line, msg := c.read()
		if method != "INVITE" && strings.HasPrefix(line, "INVITE ") {
			continue
		}
		if !strings.HasPrefix(line, method+" ") {
			c.b.Fatalf("callee got %q, want %s", line, method)
		}
		return msg
	}
}

// answer sends a response to req: its Via, Record-Route, From, Call-ID
// and CSeq lines copied, To tagged.
func (c *callee) answer(req []byte, code int, reason string) {
	c.out = answerTo(c.out[:0], req, code, reason, "callee", c.contact)
	if _, err := c.conn.WriteToUDP(c.out, c.edge); err != nil {
		c.b.Fatal(err)
	}
}

// answerTo appends to out the response to req.
func answerTo(out, req []byte, code int, reason, tag, contact string) []byte {
	out = append(out, "SIP/2.0 "...)
	out = strconv.AppendInt(out, int64(code), 10)
	out = append(out, " "+reason+"\r\n"...)
	head, _, _ := bytes.Cut(req, []byte("\r\n\r\n"))
	lines := bytes.Split(head, []byte("\r\n"))[1:]
	for _, l := range lines {
		name, _, _ := bytes.Cut(l, []byte(":"))
		switch string(bytes.ToLower(bytes.TrimSpace(name))) {
		case "via", "record-route", "from", "call-id", "cseq":
			out = append(out, l...)
			out = append(out, "\r\n"...)
		case "to":
			out = append(out, l...)
			if !bytes.Contains(l, []byte(";tag=")) {
				out = append(out, ";tag="+tag...)
			}
			out = append(out, "\r\n"...)
		}
	}
	if contact != "" {
		out = append(out, "Contact: "+contact+"\r\n"...)
	}
	return append(out, "Content-Length: 0\r\n\r\n"...)
}

// caller is a raw UDP user agent placing calls.
type caller struct {
	*benchClient
	from string // From header value, tag included
}

// expect reads the responses with the codes given, in order, skipping
// retransmissions, and returns the last.
func (c *caller) expect(codes ...string) []byte {
	var msg []byte
	for _, code := range codes {
		for {
			var line string
			line, msg = c.read()
			// 100 Trying comes when the edge took over 200 ms, and a
			// 407 again when the ACK for it took over T1 (both happen
			// under valgrind).
			if line == "SIP/2.0 100 Trying" && code != "100" ||
				strings.HasPrefix(line, "SIP/2.0 407 ") && code != "407" {
				continue
			}
			wantStatus(c.b, line, code)
			break
		}
	}
	return msg
}

// header returns the values of the headers called name in msg.
func header(msg []byte, name string) [][]byte {
	head, _, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	var vals [][]byte
	for _, l := range bytes.Split(head, []byte("\r\n"))[1:] {
		n, v, ok := bytes.Cut(l, []byte(":"))
		if ok && bytes.EqualFold(bytes.TrimSpace(n), []byte(name)) {
			vals = append(vals, bytes.TrimSpace(v))
		}
	}
	return vals
}

// inDialog builds the caller's ACK or BYE for the dialog the 200 ok set
// up: Request-URI from its Contact, Route from its Record-Route.
func (c *caller) inDialog(method string, ok []byte, seq int, callID string, branch int) []byte {
	ct := header(ok, "Contact")[0]
	ct = bytes.TrimSuffix(bytes.TrimPrefix(ct, []byte("<")), []byte(">"))
	c.out = c.out[:0]
	c.out = append(c.out, method+" "...)
	c.out = append(c.out, ct...)
	c.out = append(c.out, " SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:"...)
	c.out = strconv.AppendInt(c.out, int64(c.port), 10)
	c.out = append(c.out, ";rport;branch=z9hG4bK-dlg-"...)
	c.out = strconv.AppendInt(c.out, int64(branch), 10)
	c.out = append(c.out, "\r\n"...)
	for _, rr := range header(ok, "Record-Route") {
		c.out = append(c.out, "Route: "...)
		c.out = append(c.out, rr...)
		c.out = append(c.out, "\r\n"...)
	}
	c.out = append(c.out, "Max-Forwards: 70\r\nFrom: "+c.from+"\r\nTo: "...)
	c.out = append(c.out, header(ok, "To")[0]...)
	c.out = append(c.out, "\r\nCall-ID: "+callID+"\r\nCSeq: "...)
	c.out = strconv.AppendInt(c.out, int64(seq), 10)
	c.out = append(c.out, " "+method+"\r\nContent-Length: 0\r\n\r\n"...)
	return c.out
}

func (c *caller) send(msg []byte) {
	if _, err := c.conn.WriteToUDP(msg, c.edge); err != nil {
		c.b.Fatal(err)
	}
}

// answerCall plays the rest of an INVITE the callee received: 180, 200,
// the caller's ACK, then a BYE from the caller answered 200.
func answerCall(b *testing.B, a *caller, cl *callee, callID string, seq, branch int) {
	inv := cl.expect("INVITE")
	cl.answer(inv, 180, "Ringing")
	a.expect("180")
	cl.answer(inv, 200, "OK")
	ok := a.expect("200")
	a.send(a.inDialog("ACK", ok, seq, callID, branch))
	cl.expect("ACK")
	a.send(a.inDialog("BYE", ok, seq+1, callID, branch+1))
	bye := cl.expect("BYE")
	cl.answer(bye, 200, "OK")
	a.expect("200")
}

// BenchmarkEdgeTrunkCall: a call from a trunk the ACL admits, no
// challenge (the bench's trunk ladder): INVITE to a Number routed to an
// agent, 180, 200, ACK, BYE, 200.
func BenchmarkEdgeTrunkCall(b *testing.B) {
	te := benchEdge(b)
	cl := newCallee(b, te)
	a := &caller{benchClient: newBenchClient(b, te.udp), from: "<sip:+14440001@trunk01.sip.local>;tag=trunk"}
	const ruri = "sip:+17066041487@trunk01.sip.local"
	heap := retained(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		callID := "bench-trunk-" + strconv.Itoa(i)
		a.out = a.out[:0]
		a.out = append(a.out, "INVITE "+ruri+" SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:"...)
		a.out = strconv.AppendInt(a.out, int64(a.port), 10)
		a.out = append(a.out, ";rport;branch=z9hG4bK-inv-"...)
		a.out = strconv.AppendInt(a.out, int64(i), 10)
		a.out = append(a.out, "\r\nMax-Forwards: 70\r\nFrom: "+a.from+"\r\nTo: <"+ruri+">\r\nCall-ID: "+callID+
			"\r\nCSeq: 1 INVITE\r\nContact: <sip:+14440001@127.0.0.1:"...)
		a.out = strconv.AppendInt(a.out, int64(a.port), 10)
		a.out = append(a.out, ">\r\nContent-Length: 0\r\n\r\n"...)
		a.send(a.out)
		answerCall(b, a, cl, callID, 1, 2*i)
	}
	heap()
}

// retained reports, when the function it returns is called after the
// loop, the heap still in use per op 1 s after the ops are done (after a
// GC): what finished calls leave behind for longer, such as transactions
// lingering for their timers (SIP_TRANSACTION_LINGER, Timer K). Not an
// exact figure (other goroutines allocate too), but it moves with the
// state each call keeps.
func retained(b *testing.B) func() {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	before := m.HeapAlloc
	return func() {
		b.StopTimer()
		time.Sleep(time.Second)
		runtime.GC()
		runtime.ReadMemStats(&m)
		b.ReportMetric(float64(int64(m.HeapAlloc)-int64(before))/float64(b.N), "retained-B/op")
	}
}

// BenchmarkEdgeCallChallenged: a call between two agents (the bench's
// calls ladder): INVITE, 407, ACK, INVITE with Proxy-Authorization,
// 180, 200, ACK, BYE, 200.
func BenchmarkEdgeCallChallenged(b *testing.B) {
	te := benchEdge(b)
	cl := newCallee(b, te)
	a := &caller{benchClient: newBenchClient(b, te.udp), from: "<sip:1002@sip.local>;tag=bench-1002"}
	const ruri = "sip:1001@sip.local"
	heap := retained(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		callID := "bench-call-" + strconv.Itoa(i)
		seq := 3 * i
		inv := a.request("INVITE", ruri, "1002", callID, seq)
		ch := a.expectAfter(inv, "407")
		a.send(ackFor(a.request("INVITE", ruri, "1002", callID, seq), ch))
		authz := "Proxy-Authorization: " + authorization(b, ch, "INVITE", ruri, "1002")
		a.send(a.request("INVITE", ruri, "1002", callID, seq+1, authz))
		answerCall(b, a, cl, callID, seq+1, 2*i)
	}
	heap()
}

func (c *caller) expectAfter(msg []byte, code string) []byte {
	c.send(msg)
	return append([]byte(nil), c.expect(code)...)
}

// ackFor turns an INVITE into the ACK for its non-2xx response res (RFC
// 3261 17.1.1.3): same branch and CSeq number, the To of res.
func ackFor(inv, res []byte) []byte {
	head, _, _ := bytes.Cut(inv, []byte("\r\n\r\n"))
	lines := bytes.Split(head, []byte("\r\n"))
	out := append([]byte("ACK "), bytes.TrimPrefix(lines[0], []byte("INVITE "))...)
	out = append(out, "\r\n"...)
	for _, l := range lines[1:] {
		switch {
		case bytes.HasPrefix(l, []byte("To:")):
			out = append(out, "To: "...)
			out = append(out, header(res, "To")[0]...)
		case bytes.HasPrefix(l, []byte("CSeq:")):
			out = append(out, bytes.Replace(l, []byte(" INVITE"), []byte(" ACK"), 1)...)
		case bytes.HasPrefix(l, []byte("Content-Length:")), bytes.HasPrefix(l, []byte("Contact:")):
			continue
		default:
			out = append(out, l...)
		}
		out = append(out, "\r\n"...)
	}
	return append(out, "Content-Length: 0\r\n\r\n"...)
}
