package edge

import (
	"net/netip"
	"testing"

	"github.com/emiago/sipgo/sip"
)

const inviteText = "INVITE sip:+17066041487@trunk01.sip.local SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK-1;rport\r\n" +
	"Via: SIP/2.0/UDP 10.0.0.8:5060;branch=z9hG4bK-0\r\n" +
	"Max-Forwards: 70\r\n" +
	"From: <sip:+14440001@trunk01.sip.local>;tag=a\r\n" +
	"To: <sip:+17066041487@trunk01.sip.local>\r\n" +
	"Call-ID: copy-1\r\n" +
	"CSeq: 1 INVITE\r\n" +
	"Contact: <sip:+14440001@10.0.0.9:5060>\r\n" +
	"Route: <sip:10.0.0.1;lr>\r\n" +
	"Content-Type: application/sdp\r\n" +
	"Content-Length: 4\r\n\r\nv=0\n"

func parseRequest(t testing.TB, text string) *sip.Request {
	t.Helper()
	m, err := sip.ParseMessage([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	req := m.(*sip.Request)
	req.SetTransport("UDP")
	req.SetSource("192.0.2.7:40000")
	return req
}

// What the proxy does to its copy (prepare, branchTo, proxyInDialog)
// leaves the received request as it was: its server transaction still
// answers from it.
func TestCopyRequestLeavesReceivedAlone(t *testing.T) {
	req := parseRequest(t, inviteText)
	before := req.String()
	s := &Server{addrs: newAdvertiser(nil, nil)}
	r := &Request{Request: req, Src: netip.MustParseAddrPort("192.0.2.7:40000")}
	out := s.prepare(r)
	out.RemoveHeader("Route")
	out.RemoveHeader("Proxy-Authorization")
	out.Recipient = sip.Uri{Scheme: "sip", User: "1001", Host: "127.0.0.1", Port: 5070}
	out.PrependHeader(s.via("udp", netip.MustParseAddr("127.0.0.1"), "z9hG4bKrg-x"))
	out.SetDestination("127.0.0.1:5070")
	if got := req.String(); got != before {
		t.Fatalf("received request changed:\n%s\nwas\n%s", got, before)
	}
	if v := out.GetHeaders("Via"); len(v) != 3 {
		t.Fatalf("copy has %d Vias, want 3", len(v))
	}
	top := out.GetHeaders("Via")[1].(*sip.ViaHeader)
	if rcv, _ := top.Params.Get("received"); rcv != "192.0.2.7" {
		t.Fatalf("copy's caller Via: %s", top.Value())
	}
	if c := out.Contact(); c.Address.Host != "192.0.2.7" || c.Address.Port != 40000 {
		t.Fatalf("copy's Contact not fixed for NAT: %s", c.Value())
	}
	if out.MaxForwards().Val() != 69 || string(out.Body()) != "v=0\n" {
		t.Fatalf("copy: Max-Forwards %d, body %q", out.MaxForwards().Val(), out.Body())
	}
}

func TestCopyResponseLeavesReceivedAlone(t *testing.T) {
	m, err := sip.ParseMessage([]byte("SIP/2.0 200 OK\r\n" +
		"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKrg-1\r\n" +
		"Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK-1;received=192.0.2.7;rport=40000\r\n" +
		"From: <sip:a@x>;tag=a\r\nTo: <sip:b@x>;tag=b\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n" +
		"Contact: <sip:b@10.1.1.1:5060>\r\nContent-Length: 0\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	res := m.(*sip.Response)
	before := res.String()
	out := copyResponse(res)
	out.RemoveHeader("Via")
	fixNATContact(out, netip.MustParseAddrPort("192.0.2.8:5062"), "udp")
	if got := res.String(); got != before {
		t.Fatalf("received response changed:\n%s\nwas\n%s", got, before)
	}
	if c := out.Contact(); c.Address.Host != "192.0.2.8" {
		t.Fatalf("copy's Contact %s", c.Value())
	}
	if got := viaDest(out.Via()); got != "192.0.2.7:40000" {
		t.Fatalf("viaDest = %s", got)
	}
}

// BenchmarkCopyRequest against sipgo's Clone, which the proxy used before.
func BenchmarkCopyRequest(b *testing.B) {
	req := parseRequest(b, inviteText)
	b.Run("copy", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			_ = copyRequest(req)
		}
	})
	b.Run("sipgo-clone", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			_ = req.Clone()
		}
	})
}
