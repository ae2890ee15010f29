package edge

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/routr-go/routr/internal/resources"
	"github.com/routr-go/routr/internal/siptest"
)

// TestNoDNSForResponses checks that a request's Via never makes the edge
// look a name up (RFC 3261 18.2.2, RFC 3581: responses go to the address
// the request came from). A TCP peer that sends a request and resets the
// connection at once leaves sipgo without the connection to answer on;
// sipgo then resolved the Via's host, or its received parameter, and
// dialled it: a lookup and a connection chosen by whoever sent the request.
func TestNoDNSForResponses(t *testing.T) {
	srv, stop := startStoppable(t, loadExample(t))
	before := dnsQueries.Load()
	for i := range 40 {
		c, err := net.Dial("tcp", srv.Addr("tcp").String())
		if err != nil {
			t.Fatal(err)
		}
		via := "probe.example.com:5060"
		if i%2 == 1 {
			via = "127.0.0.1:5060;received=probe.example.com"
		}
		fmt.Fprintf(c, "OPTIONS sip:sip.local SIP/2.0\r\n"+
			"Via: SIP/2.0/TCP %s;branch=z9hG4bK-dns-%d\r\n"+
			"Max-Forwards: 70\r\nFrom: <sip:1001@sip.local>;tag=f%d\r\nTo: <sip:sip.local>\r\n"+
			"Call-ID: dns-%d\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", via, i, i, i)
		_ = c.(*net.TCPConn).SetLinger(0)
		_ = c.Close()
	}
	// Run returns once every request sipgo read has been handled.
	stop()
	if n := dnsQueries.Load() - before; n != 0 {
		t.Fatalf("the edge sent %d DNS queries for names in Via headers", n)
	}
}

// TestSIPResolverLooksUpOnlyForTheEdge checks the resolver sipgo is given:
// a lookup for a request the edge sends goes out (here to the tests'
// refusing DNS dialler), any other fails without a query.
func TestSIPResolverLooksUpOnlyForTheEdge(t *testing.T) {
	r := sipResolver()
	before := dnsQueries.Load()
	if _, err := r.LookupIPAddr(context.Background(), "probe.example.com"); err == nil {
		t.Fatal("unmarked lookup succeeded")
	}
	if n := dnsQueries.Load() - before; n != 0 {
		t.Fatalf("unmarked lookup sent %d queries", n)
	}
	if _, err := r.LookupIPAddr(withDNS(context.Background()), "probe.example.com"); err == nil {
		t.Fatal("lookup succeeded with DNS off in tests")
	}
	if dnsQueries.Load() == before {
		t.Fatal("the edge's own lookup sent no query")
	}
	// /etc/hosts needs no query either way.
	if _, err := r.LookupIPAddr(context.Background(), "localhost"); err != nil {
		t.Fatalf("localhost: %v", err)
	}
}

// TestTrunkByHostName checks that the edge's own requests still have
// their destination resolved: a trunk named by host name (localhost, from
// /etc/hosts) is reached.
func TestTrunkByHostName(t *testing.T) {
	te := startEdge(t)
	re := &routingEdge{testEdge: te}
	re.primary = te.other(t, "gw1", "provider.test")
	re.secondary = te.other(t, "gw2", "provider.test")
	byName := strings.ReplaceAll(routingResources, "host: 127.0.0.1, port: %[1]d", "host: localhost, port: %[1]d")
	rs, err := resources.Parse("routing.yaml", fmt.Appendf(nil, byName, re.primary.Port(), re.secondary.Port()))
	if err != nil {
		t.Fatal(err)
	}
	set, err := resources.Build(rs)
	if err != nil {
		t.Fatal(err)
	}
	te.srv.opts.Resources.Store(set)
	a := re.phone(t, "udp", "1001")
	c := siptest.Dial(t, a, re.primary, "+4930123456", "pstn-by-name")
	if c.Received == nil || c.Received.Method != sip.INVITE {
		t.Fatalf("trunk by host name got %v", c.Received)
	}
}

// TestEdgeRequestsMayLookUp checks that requests the edge sends itself,
// in a transaction or not, do ask DNS for a destination named by host
// name (the tests' DNS dialler refuses, so they fail after the query).
func TestEdgeRequestsMayLookUp(t *testing.T) {
	te := startEdge(t)
	mk := func(m sip.RequestMethod) *sip.Request {
		req := sip.NewRequest(m, sip.Uri{Scheme: "sip", User: "x", Host: "gw.example.com"})
		vp := sip.NewParams()
		vp.Add("branch", sip.GenerateBranch())
		req.AppendHeader(&sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "127.0.0.1", Port: 5060, Params: vp})
		fp := sip.NewParams()
		fp.Add("tag", "t")
		req.AppendHeader(&sip.FromHeader{Address: sip.Uri{Scheme: "sip", Host: "sip.local"}, Params: fp})
		req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", Host: "gw.example.com"}})
		cid := sip.CallIDHeader("lookup-" + string(m))
		req.AppendHeader(&cid)
		req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: m})
		req.SetTransport("UDP")
		req.SetDestination("gw.example.com:5060")
		return req
	}
	before := dnsQueries.Load()
	if err := te.srv.writeRequest(mk(sip.ACK)); err == nil {
		t.Fatal("ACK to an unresolvable name was sent")
	}
	if dnsQueries.Load() == before {
		t.Fatal("ACK: no DNS query")
	}
	before = dnsQueries.Load()
	if _, err := te.srv.clientRequest(mk(sip.OPTIONS)); err == nil {
		t.Fatal("OPTIONS to an unresolvable name was sent")
	}
	if dnsQueries.Load() == before {
		t.Fatal("OPTIONS: no DNS query")
	}
}
