package edge

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/routr-go/routr/internal/events"
	"github.com/routr-go/routr/internal/siptest"
)

// openFDs counts the process's open file descriptors (Linux).
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// settle waits until the goroutines and file descriptors are back to at
// most their starting level (plus slack for runtime helpers), and so are
// the accepted connections.
func (me *multiEdge) settle(t *testing.T, goroutines, fds int, conns int64) {
	t.Helper()
	var g, f int
	var open int64
	start := time.Now()
	deadline := start.Add(12 * time.Second)
	for time.Now().Before(deadline) {
		g, f, open = runtime.NumGoroutine(), openFDs(t), me.srv.conns.Open()
		if g <= goroutines+2 && f <= fds && open <= conns {
			t.Logf("released in %v: goroutines %d (started at %d), fds %d (started at %d)", time.Since(start).Round(time.Millisecond), g, goroutines, f, fds)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	buf := make([]byte, 1<<20)
	t.Fatalf("not released: goroutines %d (started at %d), fds %d (started at %d), connections open %d (started at %d)\n%s",
		g, goroutines, f, fds, open, conns, buf[:runtime.Stack(buf, true)])
}

// TestVanishingWebSocketPeers opens many WS and WSS connections, kills them
// abruptly in the middle of transactions (TCP reset, no WebSocket close),
// and checks that the edge keeps answering others, that a callee that
// vanishes while ringing gets the caller an immediate 503, that its
// binding is no longer used, that a caller that vanishes while ringing has
// the callee's INVITE cancelled, and that goroutines, file descriptors and
// connections return to their starting level.
func TestVanishingWebSocketPeers(t *testing.T) {
	me := startMultiEdge(t, nil, nil)
	control := me.phoneOver(t, "udp", "1003", false)
	mustRegister(t, control)
	// Warm up everything that starts lazily (pools, timers, TLS caches).
	for _, tp := range []string{"ws", "wss"} {
		p := me.phoneOver(t, tp, "1001", false)
		mustRegister(t, p)
		p.Close()
	}
	caller := me.phoneOver(t, "tcp", "1001", false) // reliable: its ACKs end transactions at once
	time.Sleep(100 * time.Millisecond)
	goroutines, fds, conns := runtime.NumGoroutine(), openFDs(t), me.srv.conns.Open()

	// 1. Many peers send a request and vanish before the answer.
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	// The handshakes (half of them TLS, both ends in this process, under
	// -race) are CPU-bound: 200 at once took ~0.5 s of CPU and, on two
	// cores shared with other loaded processes, over the phone's 3 s
	// handshake budget in wall time, every dial waiting on all the others
	// (the edge upgrades each connection on its own goroutine). Dialling a
	// few at a time bounds each handshake's wait without changing what is
	// tested: the peers still hold their connections and vanish together.
	dialSlots := make(chan struct{}, 16)
	for i := range n {
		wg.Go(func() {
			tp := []string{"ws", "wss"}[i%2]
			dialSlots <- struct{}{}
			p, err := me.dial(tp, "1001", false)
			<-dialSlots
			if err != nil {
				errs <- err
				return
			}
			req := p.NewRequest(sip.REGISTER, "sip:sip.local", fmt.Sprintf("vanish-%d", i))
			if i%4 < 2 {
				req = p.NewRequest(sip.INVITE, "sip:1003@sip.local", fmt.Sprintf("vanish-%d", i))
			}
			_ = p.Send(req)
			if i%10 != 0 {
				// Most die with the transaction open (an INVITE's 407
				// awaits its ACK); one in ten before the edge has even
				// answered, the request still in flight.
				if _, err := p.Next(wait); err != nil {
					errs <- err
				}
			}
			p.Abort()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// The edge still answers, over UDP and over a new WebSocket.
	if res, err := control.Register(300, ""); err != nil || res.StatusCode != 200 {
		t.Fatalf("control REGISTER after the storm: %v %v", res, err)
	}

	// 2. Callees that vanish while ringing: each call fails at once, and
	// the next call rings only the callee still connected.
	for i := range 10 {
		tp := []string{"ws", "wss"}[i%2]
		b := me.phoneOver(t, tp, "1002", false)
		mustRegister(t, b)
		c := siptest.Dial(t, caller, b, "1002", fmt.Sprintf("ringing-vanish-%d", i))
		_ = b.Send(b.Reply(c.Received, 180, "Ringing"))
		if r, err := caller.Response(sip.INVITE, wait); err != nil || r.StatusCode != 180 {
			t.Fatalf("180: %v %v", r, err)
		}
		start := time.Now()
		b.Abort()
		r, err := caller.Response(sip.INVITE, wait)
		if err != nil || r.StatusCode != 503 {
			t.Fatalf("callee vanished while ringing: caller got %v %v, want 503", r, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("503 took %v", d)
		}
		_ = caller.Send(siptest.AckFor(c.Invite, r))
	}
	c := siptest.Dial(t, caller, nil, "1002", "after-vanish")
	if r, err := caller.Response(sip.INVITE, wait); err != nil || r.StatusCode != 480 {
		t.Fatalf("call to callees that all vanished: %v %v, want 480", r, err)
	}
	_ = c

	// 3. Callers that vanish while their call rings.
	for i := range 10 {
		tp := []string{"ws", "wss"}[i%2]
		a := me.phoneOver(t, tp, "1001", false)
		c := siptest.Dial(t, a, control, "1003", fmt.Sprintf("caller-vanish-%d", i))
		_ = control.Send(control.Reply(c.Received, 180, "Ringing"))
		if r, err := a.Response(sip.INVITE, wait); err != nil || r.StatusCode != 180 {
			t.Fatalf("180: %v %v", r, err)
		}
		a.Abort()
		// Nobody is left to take the call: the edge cancels it.
		cancel, err := control.Request(sip.CANCEL, wait)
		if err != nil {
			t.Fatalf("caller vanished while ringing: %v, want a CANCEL to the callee", err)
		}
		_ = control.Send(control.Reply(cancel, 200, "OK"))
		_ = control.Send(control.Reply(c.Received, 487, "Request Terminated"))
		if _, err := control.Request(sip.ACK, wait); err != nil {
			t.Fatalf("edge did not ACK the callee's 487: %v", err)
		}
		me.wantEvents(t, c.CallID, events.TypeCallStarted, events.TypeCallEnded)
	}
	if res, err := control.Register(300, ""); err != nil || res.StatusCode != 200 {
		t.Fatalf("control REGISTER at the end: %v %v", res, err)
	}
	me.settle(t, goroutines, fds, conns)
}

// TestConnectionLimits checks the bounds on accepted connections: silent
// ones are closed after the handshake timeout, idle ones after the idle
// timeout (and their bindings are then no longer used), and connections
// over the maximum are closed on accept.
func TestConnectionLimits(t *testing.T) {
	me := startMultiEdge(t, nil, func(o *Options) {
		o.Connections = ConnLimits{Max: 4, IdleTimeout: 400 * time.Millisecond, HandshakeTimeout: 200 * time.Millisecond}
	})
	closedWithin := func(c net.Conn, d time.Duration) bool {
		_ = c.SetReadDeadline(time.Now().Add(d))
		_, err := c.Read(make([]byte, 1))
		ne, ok := err.(net.Error)
		return err != nil && !(ok && ne.Timeout())
	}
	t.Run("silent", func(t *testing.T) {
		for _, tp := range []string{"tcp", "tls", "ws", "wss"} {
			c, err := net.Dial("tcp", me.srv.Addr(tp).String())
			if err != nil {
				t.Fatal(err)
			}
			if !closedWithin(c, 2*time.Second) {
				t.Fatalf("%s: a connection that never spoke is still open", tp)
			}
			c.Close()
		}
	})
	t.Run("idle", func(t *testing.T) {
		b := me.phoneOver(t, "ws", "1002", false)
		mustRegister(t, b)
		waitFor(t, "idle connection closed", func() bool { return me.srv.conns.Open() == 0 })
		a := me.phoneOver(t, "udp", "1001", false)
		siptest.Dial(t, a, nil, "1002", "idle-callee")
		if r, err := a.Response(sip.INVITE, wait); err != nil || r.StatusCode != 480 {
			t.Fatalf("call to a callee whose connection idled out: %v %v, want 480", r, err)
		}
	})
	t.Run("max", func(t *testing.T) {
		var cs []net.Conn
		for range 4 {
			c, err := net.Dial("tcp", me.srv.Addr("tcp").String())
			if err != nil {
				t.Fatal(err)
			}
			cs = append(cs, c)
		}
		waitFor(t, "four connections accepted", func() bool { return me.srv.conns.Open() == 4 })
		extra, err := net.Dial("tcp", me.srv.Addr("tcp").String())
		if err != nil {
			t.Fatal(err)
		}
		if !closedWithin(extra, 150*time.Millisecond) {
			t.Fatal("a fifth connection was kept")
		}
		for _, c := range append(cs, extra) {
			c.Close()
		}
		waitFor(t, "connections released", func() bool { return me.srv.conns.Open() == 0 })
	})
}

// TestStalledReaderLosesConnection has a WebSocket peer send requests and
// never read the answers: once the edge's writes to it time out, the edge
// drops the connection, and other peers are served throughout.
func TestStalledReaderLosesConnection(t *testing.T) {
	me := startMultiEdge(t, nil, func(o *Options) {
		o.Connections = ConnLimits{WriteTimeout: 200 * time.Millisecond, sendBuffer: 16 << 10}
	})
	control := me.phoneOver(t, "udp", "1003", false)
	stalled, err := net.Dial("tcp", me.srv.Addr("ws").String())
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	_ = stalled.(*net.TCPConn).SetReadBuffer(1024)
	if _, _, err := (ws.Dialer{Protocols: []string{"sip"}}).Upgrade(stalled, &url.URL{Scheme: "ws", Host: me.srv.Addr("ws").String(), Path: "/"}); err != nil {
		t.Fatal(err)
	}
	opts := func(i int) []byte {
		// The Via comes back in the answer: a long one fills the edge's
		// (small) socket buffer in a few dozen answers.
		return []byte(fmt.Sprintf("OPTIONS sip:sip.local SIP/2.0\r\nVia: SIP/2.0/WS stall.invalid;branch=z9hG4bK-stall-%d;pad=%s\r\n"+
			"Max-Forwards: 70\r\nFrom: <sip:1001@sip.local>;tag=st\r\nTo: <sip:sip.local>\r\nCall-ID: stall-%d\r\nCSeq: 1 OPTIONS\r\n"+
			"Content-Length: 0\r\n\r\n", i, strings.Repeat("x", 2000), i))
	}
	start := time.Now()
	sent := 0
	var werr error
	for ; time.Since(start) < 15*time.Second; sent++ {
		_ = stalled.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if werr = wsutil.WriteClientText(stalled, opts(sent)); werr != nil {
			break // the edge closed it, or stopped reading
		}
		i := sent
		if i%500 == 499 {
			if res, err := control.Register(300, ""); err != nil || res.StatusCode != 200 {
				t.Fatalf("REGISTER while a peer stalls: %v %v", res, err)
			}
		}
	}
	t.Logf("sent %d requests in %v, then %v", sent, time.Since(start).Round(time.Millisecond), werr)
	// On a loaded machine the edge may still be working through what it
	// read: give it time, the point is that it lets go.
	for deadline := time.Now().Add(10 * time.Second); me.srv.conns.Open() != 0; {
		if time.Now().After(deadline) {
			t.Fatal("the stalled connection is still open")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if res, err := control.Register(300, ""); err != nil || res.StatusCode != 200 {
		t.Fatalf("REGISTER after the stall: %v %v", res, err)
	}
	t.Logf("stalled peer dropped after %v", time.Since(start).Round(time.Millisecond))
}

// TestByeToVanishedWebSocketPeer hangs up a call whose WebSocket caller
// vanished after answering: the callee's BYE is answered 480 at once (the
// edge does not try to dial the peer) and the call ends.
func TestByeToVanishedWebSocketPeer(t *testing.T) {
	me := startMultiEdge(t, nil, nil)
	for _, tp := range []string{"ws", "wss"} {
		t.Run(tp, func(t *testing.T) {
			a := me.phoneOver(t, tp, "1001", false)
			b := me.phoneOver(t, "udp", "1002", false)
			mustRegister(t, b)
			c := siptest.Dial(t, a, b, "1002", "bye-vanished-"+tp)
			ok := c.Answer()
			a.Abort()
			// The edge rewrote the caller's .invalid Contact to where its
			// connection comes from.
			cu := c.Received.Contact().Address
			flow := net.JoinHostPort(cu.Host, fmt.Sprint(cu.Port))
			waitFor(t, "caller's connection noticed gone", func() bool { return !me.srv.conns.alive(flow) })
			start := time.Now()
			_ = b.Send(b.InDialog(sip.BYE, c.Received, ok, false, 1))
			res, err := b.Response(sip.BYE, wait)
			if err != nil || res.StatusCode != 480 {
				t.Fatalf("BYE to a vanished WebSocket peer: %v %v, want 480", res, err)
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("480 took %v", d)
			}
			me.wantEvents(t, c.CallID, events.TypeCallStarted, events.TypeCallAnswered, events.TypeCallEnded)
		})
	}
}

// flakyListener fails its first Accepts with a resource error.
type flakyListener struct {
	net.Listener
	fails int
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.fails > 0 {
		l.fails--
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// TestAcceptSurvivesFDExhaustion: running out of file descriptors pauses
// accepting instead of ending the listener (sipgo stops serving on any
// Accept error).
func TestAcceptSurvivesFDExhaustion(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conns, err := newConnTracker(ConnLimits{Max: 10, MaxPerSource: 10}, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	l := &limitListener{Listener: &flakyListener{Listener: ln, fails: 3}, conns: conns, handshake: time.Second}
	go func() {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			defer c.Close()
			time.Sleep(time.Second)
		}
	}()
	c, err := l.Accept()
	if err != nil {
		t.Fatalf("Accept after EMFILE: %v", err)
	}
	c.Close()
	if conns.Open() != 0 {
		t.Fatalf("open connections %d after close", conns.Open())
	}
}
