package edge

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/routr-go/routr/internal/resources"
	"github.com/routr-go/routr/internal/siptest"
)

// With several sockets on the UDP port, every answer still leaves from
// the port the client sent to (a NAT or a strict client drops others),
// and requests and responses still meet their transactions whichever
// socket they arrive on.
func TestUDPSocketsShareThePort(t *testing.T) {
	set, err := resources.LoadDir("../../config/resources")
	if err != nil {
		t.Fatal(err)
	}
	te := startEdgeWith(t, set, func(o *Options) { o.UDPSockets = 4 })
	edge, err := net.ResolveUDPAddr("udp", te.udp)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 16 {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		msg := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\n"+
			"Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-sock-%d;rport\r\n"+
			"Max-Forwards: 70\r\nFrom: <sip:probe@sip.local>;tag=%d\r\nTo: <sip:%s>\r\n"+
			"Call-ID: sock-%d\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", te.udp, port, i, i, te.udp, i)
		if _, err := c.WriteTo([]byte(msg), edge); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 4096)
		n, from, err := c.ReadFrom(buf)
		c.Close()
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		if from.String() != te.udp {
			t.Fatalf("client %d: answer from %s, want the edge's %s", i, from, te.udp)
		}
		res, err := sip.ParseMessage(buf[:n])
		if r, ok := res.(*sip.Response); err != nil || !ok || r.StatusCode != 200 {
			t.Fatalf("client %d: %v %v", i, res, err)
		}
	}

	for i := range 4 {
		a := te.phone(t, "udp", "1001")
		b := te.phone(t, "udp", "1002")
		mustRegister(t, b)
		c := siptest.Dial(t, a, b, "1002", fmt.Sprintf("call-sockets-%d", i))
		ok := c.Answer()
		c.Hangup(ok, true)
	}
}
