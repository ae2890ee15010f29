package edge

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/routr-go/routr/internal/auth"
	"github.com/routr-go/routr/internal/calls"
	"github.com/routr-go/routr/internal/location"
	"github.com/routr-go/routr/internal/resources"
)

// recordingConn keeps what a client writes.
type recordingConn struct {
	net.Conn
	mu  sync.Mutex
	out bytes.Buffer
}

func (c *recordingConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.out.Write(b)
	c.mu.Unlock()
	return c.Conn.Write(b)
}

// wsClientBytes returns the bytes a real WebSocket client (gobwas/ws, as
// sipgo's own WS transport dials) sends: its opening handshake, then
// what send writes, masked as clients must.
func wsClientBytes(tb testing.TB, send func(c net.Conn) error) []byte {
	tb.Helper()
	cli, srv := net.Pipe()
	rec := &recordingConn{Conn: cli}
	done := make(chan error, 1)
	go func() {
		_, err := ws.Upgrade(srv)
		if err == nil {
			// Drain what the client sends after the handshake.
			_, err = io.Copy(io.Discard, srv)
		}
		done <- err
	}()
	d := ws.Dialer{Protocols: []string{"sip"}, NetDial: func(context.Context, string, string) (net.Conn, error) { return rec, nil }}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, _, err := d.Dial(ctx, "ws://edge.invalid/")
	if err != nil {
		tb.Fatal(err)
	}
	if err := send(c); err != nil {
		tb.Fatal(err)
	}
	c.Close()
	<-done
	srv.Close()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return bytes.Clone(rec.out.Bytes())
}

// FuzzWebSocket writes arbitrary bytes, from the opening handshake on,
// over a real TCP connection to a running edge's WebSocket listener: the
// handshake, frame reading (fragments, control frames, masks, lengths)
// and the SIP messages inside all take them. Nothing may crash the edge,
// and every connection must end once the peer is done.
func FuzzWebSocket(f *testing.F) {
	register := []byte("REGISTER sip:sip.local SIP/2.0\r\nVia: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKws1\r\nFrom: <sip:1001@sip.local>;tag=a\r\nTo: <sip:1001@sip.local>\r\nCall-ID: ws-fuzz\r\nCSeq: 1 REGISTER\r\nContact: <sip:1001@df7jal23ls0d.invalid;transport=ws>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
	f.Add(wsClientBytes(f, func(c net.Conn) error { return wsutil.WriteClientText(c, register) }))
	f.Add(wsClientBytes(f, func(c net.Conn) error {
		// A ping, the message in two fragments, a keep-alive, a close.
		for _, fr := range []ws.Frame{
			ws.NewPingFrame([]byte("hi")),
			ws.NewFrame(ws.OpText, false, register[:40]),
			ws.NewFrame(ws.OpContinuation, true, register[40:]),
			ws.NewTextFrame([]byte("\r\n\r\n")),
			ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, "")),
		} {
			if err := ws.WriteFrame(c, ws.MaskFrameInPlace(fr)); err != nil {
				return err
			}
		}
		return nil
	}))
	f.Add(wsClientBytes(f, func(c net.Conn) error { return wsutil.WriteClientBinary(c, register) }))
	f.Add(wsClientBytes(f, func(net.Conn) error { return nil }))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))

	addr := startWSFuzzEdge(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(data); err != nil {
			return // the edge closed first: fine
		}
		_ = c.(*net.TCPConn).CloseWrite()
		// The edge must close its side once ours is closed.
		if _, err := io.Copy(io.Discard, c); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("the edge kept a connection whose peer had finished")
			}
		}
	})
}

// startWSFuzzEdge runs an edge with a WebSocket listener and no trunks or
// peers, so that nothing a fuzzed request says sends traffic anywhere,
// and returns the listener's address.
func startWSFuzzEdge(f *testing.F) string {
	f.Helper()
	dg, err := auth.New(auth.Config{Algorithms: []string{"MD5"}})
	if err != nil {
		f.Fatal(err)
	}
	set, err := resources.LoadDir(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	srv, err := New(Options{
		Listeners:   []Listener{{Protocol: "ws", Addr: "127.0.0.1:0"}},
		Resources:   resources.NewHolder(set),
		Auth:        dg,
		Location:    location.NewMemory(location.MemoryOptions{MaxBindings: 100}),
		Calls:       calls.NewTracker(calls.Options{}),
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registerer:  prometheus.NewRegistry(),
		Connections: ConnLimits{HandshakeTimeout: time.Second},
	})
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	<-srv.Ready()
	f.Cleanup(func() {
		cancel()
		<-done
	})
	return srv.Addr("ws").String()
}
