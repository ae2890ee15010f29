package sip

// routr-go patch: tests for the allocation patches listed in PATCHES.md.

import (
	"bytes"
	"net"
	"strconv"
	"strings"
	"testing"
)

func TestRoutrIsIPV6(t *testing.T) {
	for _, host := range []string{
		"127.0.0.1", "sip.example.com", "localhost", "::1", "[::1]", "fe80::1",
		"2001:db8::1", "::ffff:127.0.0.1", "0000:0000:0000:0000:0000:ffff:255.255.255.255",
		"a.b:c", "1.2.3.4:5060", "", ":", ".", "fe80::1%eth0",
	} {
		ip := net.ParseIP(host)
		want := ip != nil && ip.To4() == nil
		if got := isIPV6(host); got != want {
			t.Errorf("isIPV6(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestRoutrWriteInt(t *testing.T) {
	for _, n := range []int{0, 7, 99, 100, 5060, 65535, 2147483647, -1} {
		var sb strings.Builder
		writeInt(&sb, n)
		var bb bytes.Buffer
		writeInt(&bb, n)
		var ow otherWriter
		writeInt(&ow, n)
		want := strconv.Itoa(n)
		if sb.String() != want || bb.String() != want || ow.s != want {
			t.Errorf("writeInt(%d) = %q %q %q, want %q", n, sb.String(), bb.String(), ow.s, want)
		}
	}
}

type otherWriter struct{ s string }

func (w *otherWriter) WriteString(s string) (int, error) { w.s += s; return len(s), nil }

// The write path gives the bytes upstream's did: URIs with IPv6 hosts,
// ports, params and headers, and the start lines.
func TestRoutrWriteBytes(t *testing.T) {
	for _, s := range []string{
		"sip:alice@127.0.0.1:5060;transport=udp;lr",
		"sip:[2001:db8::1]:5070;lr",
		"sips:bob:secret@example.com;a=b c;x?h1=v1&h2=",
		"tel:+14440001",
		"sip:example.com",
	} {
		var u Uri
		if err := ParseUri(s, &u); err != nil {
			t.Fatal(s, err)
		}
		var want strings.Builder
		want.WriteString(u.Scheme + ":")
		if u.Raw() != "" {
			want.WriteString(u.Raw())
		} else {
			if u.User != "" {
				want.WriteString(u.User)
				if u.Password != "" {
					want.WriteString(":" + u.Password)
				}
				want.WriteString("@")
			}
			want.WriteString(uriIP(u.Host))
			if u.Port > 0 {
				want.WriteString(":" + strconv.Itoa(u.Port))
			}
			if u.UriParams.Length() > 0 {
				want.WriteString(";" + u.UriParams.ToString(';'))
			}
			if u.Headers.Length() > 0 {
				want.WriteString("?" + u.Headers.ToString('&'))
			}
		}
		var bb bytes.Buffer
		u.StringWrite(&bb)
		if got := u.String(); got != want.String() || bb.String() != want.String() {
			t.Errorf("%q: String %q, StringWrite %q, want %q", s, got, bb.String(), want.String())
		}
		req := NewRequest(INVITE, u)
		if got := req.StartLine(); got != "INVITE "+want.String()+" SIP/2.0" {
			t.Errorf("start line %q", got)
		}
	}
	res := NewResponse(180, "Ringing")
	if got := res.StartLine(); got != "SIP/2.0 180 Ringing" {
		t.Errorf("start line %q", got)
	}
	cseq := CSeqHeader{SeqNo: 123456, MethodName: INVITE}
	if got := cseq.String(); got != "CSeq: 123456 INVITE" {
		t.Errorf("cseq %q", got)
	}
	via := ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "fe80::1", Port: 5060, Params: HeaderParams{{"branch", "z9hG4bK1"}, {"rport", ""}}}
	var bb bytes.Buffer
	via.valueStringWrite(&bb)
	if got := bb.String(); got != "SIP/2.0/UDP [fe80::1]:5060;branch=z9hG4bK1;rport" {
		t.Errorf("via %q", got)
	}
}

// A lookup of a header the message lacks (what the lazy accessors do),
// among names outside HeaderToLower's list.
func BenchmarkRoutrGetHeader(b *testing.B) {
	msg, err := ParseMessage([]byte(strings.Join([]string{
		"INVITE sip:bob@127.0.0.1:5060 SIP/2.0",
		"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1;rport",
		"Max-Forwards: 70",
		"From: <sip:alice@example.com>;tag=1",
		"To: <sip:bob@example.com>",
		"Call-ID: abc",
		"CSeq: 1 INVITE",
		"Contact: <sip:alice@127.0.0.1:5070>",
		"User-Agent: x",
		"Allow: INVITE, ACK, BYE",
		"Supported: timer",
		"Content-Type: application/sdp",
		"Content-Length: 0",
		"", ""}, "\r\n")))
	if err != nil {
		b.Fatal(err)
	}
	req := msg.(*Request)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		_ = req.getHeader("route")
		_ = req.GetHeader("Proxy-Authorization")
	}
}

func TestRoutrServerTxKey(t *testing.T) {
	for _, via := range []string{
		"SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-inv-1;rport",
		"SIP/2.0/TCP example.com;branch=z9hG4bK776asdhds",
		"SIP/2.0/UDP [2001:db8::1]:65535;branch=z9hG4bKx",
	} {
		msg := testCreateMessage(t, []string{
			"ACK sip:bob@example.com SIP/2.0",
			"Via: " + via,
			"From: <sip:alice@example.com>;tag=1",
			"To: <sip:bob@example.com>",
			"Call-ID: abc",
			"CSeq: 1 ACK",
			"Content-Length: 0",
			"", ""})
		v := msg.Via()
		branch, _ := v.Params.Get("branch")
		port := v.Port
		if port == 0 {
			port = int(DefaultPort(v.Transport))
		}
		want := branch + TxSeperator + v.Host + TxSeperator + strconv.Itoa(port) + TxSeperator + "INVITE"
		got, err := ServerTxKeyMake(msg)
		if err != nil || got != want {
			t.Errorf("key %q %v, want %q", got, err, want)
		}
		if n := testing.AllocsPerRun(10, func() { ServerTxKeyMake(msg) }); n != 1 {
			t.Errorf("%v allocs, want 1", n)
		}
	}
}

func TestRoutrDefaultPort(t *testing.T) {
	want := map[string]int{"udp": DefaultUdpPort, "tcp": DefaultTcpPort, "tls": DefaultTlsPort, "ws": DefaultWsPort, "wss": DefaultWssPort}
	for _, tp := range []string{"UDP", "udp", "Udp", "TCP", "tcp", "tCp", "TLS", "tls", "WS", "ws", "wS", "WSS", "wss", "Wss", "SCTP", "", "x"} {
		w, ok := want[ASCIIToLower(tp)]
		if !ok {
			w = DefaultTcpPort
		}
		if got := DefaultPort(tp); got != w {
			t.Errorf("DefaultPort(%q) = %d, want %d", tp, got, w)
		}
	}
}

func TestRoutrParamsRoom(t *testing.T) {
	var via ViaHeader
	if err := parseViaHeader("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1;rport;received=10.0.0.1", &via); err != nil {
		t.Fatal(err)
	}
	if want := (HeaderParams{{"branch", "z9hG4bK1"}, {"rport", ""}, {"received", "10.0.0.1"}}); !via.Params.Equals(want) || len(via.Params) != 3 || cap(via.Params) != 3 {
		t.Errorf("via params %v cap %d", via.Params, cap(via.Params))
	}
	via = ViaHeader{}
	if err := parseViaHeader("SIP/2.0/UDP 127.0.0.1:5060", &via); err != nil || via.Params != nil {
		t.Errorf("via params %#v %v", via.Params, err)
	}
	var from FromHeader
	if err := parseFromHeader("<sip:alice@example.com>;tag=1;x;y=\"a b\"", &from); err != nil {
		t.Fatal(err)
	}
	if want := (HeaderParams{{"tag", "1"}, {"x", ""}, {"y", "\"a b\""}}); len(from.Params) != 3 || !from.Params.Equals(want) || cap(from.Params) != 3 {
		t.Errorf("from params %#v cap %d", from.Params, cap(from.Params))
	}
	from = FromHeader{}
	if err := parseFromHeader("<sip:alice@example.com>", &from); err != nil || from.Params != nil {
		t.Errorf("from params %#v %v", from.Params, err)
	}
}

func TestRoutrLazyHeaderMissing(t *testing.T) {
	msg := testCreateMessage(t, []string{
		"BYE sip:bob@example.com SIP/2.0",
		"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1",
		"From: <sip:alice@example.com>;tag=1",
		"To: <sip:bob@example.com>;tag=2",
		"Call-ID: abc",
		"CSeq: 2 BYE",
		"Content-Length: 0",
		"", ""})
	req := msg.(*Request)
	n := testing.AllocsPerRun(10, func() {
		if req.Route() != nil || req.RecordRoute() != nil || req.Contact() != nil || req.ContentType() != nil || req.ReferTo() != nil {
			t.Fatal("header found")
		}
	})
	if n != 0 {
		t.Errorf("%v allocs for missing headers", n)
	}
	// A header not parsed at parse time is parsed on access.
	req = NewRequest(BYE, Uri{Host: "example.com"})
	req.AppendHeader(NewHeader("Route", "<sip:p1.example.com;lr>"))
	req.AppendHeader(NewHeader("Max-Forwards", "70"))
	if r := req.Route(); r == nil || r.Address.Host != "p1.example.com" || !r.Address.UriParams.Has("lr") {
		t.Errorf("route %v", r)
	}
	if m := req.MaxForwards(); m == nil || *m != 70 {
		t.Errorf("max-forwards %v", m)
	}
	req.AppendHeader(NewHeader("CSeq", "x"))
	if c := req.CSeq(); c != nil {
		t.Errorf("cseq %v", c)
	}
}

func TestRoutrAddrStrings(t *testing.T) {
	ips := []net.IP{
		net.IPv4(127, 0, 0, 1), net.IPv4(127, 0, 0, 1).To4(), net.ParseIP("10.1.2.3"), net.ParseIP("255.255.255.255").To4(),
		net.ParseIP("::1"), net.ParseIP("fe80::1"), net.ParseIP("::ffff:1.2.3.4"), {1, 2, 3}, nil, {},
	}
	for _, ip := range ips {
		for _, port := range []int{0, 5, 99, 5060, 65535, -1} {
			for _, zone := range []string{"", "eth0"} {
				u := &net.UDPAddr{IP: ip, Port: port, Zone: zone}
				if got, want := udpAddrString(u), u.String(); got != want {
					t.Errorf("udpAddrString(%#v) = %q, want %q", u, got, want)
				}
				if ip == nil {
					continue
				}
				a := Addr{IP: ip, Port: port, Zone: zone, Hostname: "h"}
				if got, want := a.String(), net.JoinHostPort(ip.String(), strconv.Itoa(port)); got != want {
					t.Errorf("Addr%v.String() = %q, want %q", ip, got, want)
				}
			}
		}
	}
	var nilAddr *net.UDPAddr
	if got := udpAddrString(nilAddr); got != "<nil>" {
		t.Errorf("nil: %q", got)
	}
	u := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5060}
	if n := testing.AllocsPerRun(10, func() { udpAddrString(u) }); n != 1 {
		t.Errorf("%v allocs", n)
	}
}

func TestRoutrUriStringAllocs(t *testing.T) {
	for _, s := range []string{
		"sip:+17066041487@trunk01.sip.local", "sips:bob:secret@example.com:5061;transport=tls;lr;x=\"a b\"?h1=v1&h2=",
		"sip:127.0.0.1:5060;transport=udp;lr;rt=abcdefghijklmnopqrstuvwxyz", "tel:+14440001", "urn:service:sos",
	} {
		var u Uri
		if err := ParseUri(s, &u); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		u.StringWrite(&b)
		if u.String() != b.String() || len(b.String()) > u.maxStringLen() {
			t.Errorf("%q: %q, %q, max %d", s, u.String(), b.String(), u.maxStringLen())
		}
		// The builder itself (it escapes, as an io.StringWriter) and its buffer.
		if n := testing.AllocsPerRun(100, func() { _ = u.String() }); n > 2 {
			t.Errorf("%q: %v allocs", s, n)
		}
	}
	u := Uri{Host: "example.com", Port: -5, UriParams: HeaderParams{{"a", "b c"}}}
	if got := u.String(); got != "sip:example.com;a=\"b c\"" || len(got) > u.maxStringLen() {
		t.Errorf("%q", got)
	}
}

// routrInvite is an INVITE as a PBX or carrier sends it: headers sipgo
// has no parser for among those it has.
var routrInvite = []byte(strings.Join([]string{
	"INVITE sip:+17066041487@trunk01.sip.local SIP/2.0",
	"Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK-524287-1---abc;rport",
	"Max-Forwards: 70",
	"Contact: <sip:+14440001@10.0.0.5:5060>",
	"To: <sip:+17066041487@trunk01.sip.local>",
	"From: \"Caller\" <sip:+14440001@trunk01.sip.local>;tag=8b9c7d",
	"Call-ID: 1-2-3-4-5@10.0.0.5",
	"CSeq: 1 INVITE",
	"Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, OPTIONS, UPDATE, PRACK",
	"Supported: replaces, timer, 100rel",
	"User-Agent: Acme PBX 1.2",
	"P-Asserted-Identity: <sip:+14440001@trunk01.sip.local>",
	"Session-Expires: 1800",
	"Min-SE: 90",
	"X-Account: 1234",
	"Content-Type: application/sdp",
	"Content-Length: 0",
	"", ""}, "\r\n"))

func BenchmarkRoutrParseInvite(b *testing.B) {
	p := NewParser()
	b.ReportAllocs()
	for range b.N {
		if _, err := p.ParseSIP(routrInvite); err != nil {
			b.Fatal(err)
		}
	}
}

func TestRoutrParseGenericHeader(t *testing.T) {
	for _, line := range []string{
		"User-Agent: Acme PBX 1.2", "X-Foo :  bar baz  ", "X-Empty:", "X-Spaces:   ", ": no name", "x-lower:v",
		"X-\u00dcnicode:\u00a0v\u00a0", "\tX-Tab\t:\tv\t", "MAX-FORWARDS: 70", "Refer-To: <sip:a@b>", "REFER-TO: <sip:a@b>",
		"A-Very-Long-Header-Name-Longer-Than-Thirty-Two-Bytes: v", "CALL-ID: abc", "Session-Expires: 1800;refresher=uac",
	} {
		colon := strings.IndexByte(line, ':')
		name := string(bytes.TrimSpace([]byte(line[:colon])))
		value := string(bytes.TrimSpace([]byte(line[colon+1:])))
		hs, err := headersParsers.ParseHeader(nil, []byte(line))
		if err != nil || len(hs) != 1 {
			t.Fatalf("%q: %v %v", line, hs, err)
		}
		h := hs[0]
		if _, ok := headersParsers[ASCIIToLower(name)]; ok {
			if _, generic := h.(*genericHeader); generic {
				t.Errorf("%q: parsed as generic", line)
			}
			continue
		}
		if h.Name() != name || h.Value() != value {
			t.Errorf("%q: %q: %q, want %q: %q", line, h.Name(), h.Value(), name, value)
		}
	}
	// Folded.
	msg := testCreateMessage(t, []string{"OPTIONS sip:a@b SIP/2.0", "X-Fold: a", " b", "Content-Length: 0", "", ""})
	if h := msg.(*Request).GetHeader("X-Fold"); h == nil || h.Value() != "a b" {
		t.Errorf("folded %v", h)
	}
}

func TestRoutrSmallNumberString(t *testing.T) {
	for n := range 1000 {
		s := strconv.Itoa(n)
		if got, ok := smallNumberString([]byte(s)); !ok || got != s {
			t.Fatalf("%d: %q %v", n, got, ok)
		}
	}
	for _, s := range []string{"", "00", "01", "007", "1000", "-1", "+1", "1a", " 1", "a", "99999"} {
		if got, ok := smallNumberString([]byte(s)); ok {
			t.Errorf("%q: %q", s, got)
		}
	}
	msg := testCreateMessage(t, []string{"OPTIONS sip:a@b SIP/2.0", "Max-Forwards: 70", "Content-Length: 0", "", ""})
	if mf := msg.(*Request).MaxForwards(); mf == nil || *mf != 70 {
		t.Errorf("max-forwards %v", mf)
	}
}
