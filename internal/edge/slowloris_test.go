package edge

import (
	"bufio"
	"bytes"
	"net"
	"strings"
	"testing"
	"time"
)

// A TCP connection that starts a message and stops is closed at the
// handshake deadline; one whose first message is complete, even when its
// blank line comes in two writes, is kept until the idle timeout.
func TestUnfinishedHeadersClosed(t *testing.T) {
	me := startMultiEdge(t, nil, func(o *Options) {
		o.Connections = ConnLimits{IdleTimeout: 10 * time.Second, HandshakeTimeout: 300 * time.Millisecond}
	})
	addr := me.srv.Addr("tcp").String()
	closedWithin := func(c net.Conn, d time.Duration) bool {
		_ = c.SetReadDeadline(time.Now().Add(d))
		_, err := c.Read(make([]byte, 1))
		ne, ok := err.(net.Error)
		return err != nil && !(ok && ne.Timeout())
	}
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	slow := dial()
	if _, err := slow.Write([]byte("INVITE sip:1002@sip.local SIP/2.0\r\nVia: SIP/2.0/TCP x")); err != nil {
		t.Fatal(err)
	}
	if !closedWithin(slow, 3*time.Second) {
		t.Fatal("a connection that never finished its headers is still open")
	}

	good := dial()
	local := good.LocalAddr().String()
	msg := "OPTIONS sip:" + addr + " SIP/2.0\r\n" +
		"Via: SIP/2.0/TCP " + local + ";branch=z9hG4bK-slow-1\r\n" +
		"Max-Forwards: 70\r\nFrom: <sip:1001@sip.local>;tag=a\r\nTo: <sip:" + addr + ">\r\n" +
		"Call-ID: slowloris-ok\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
	cut := len(msg) - 1 // the blank line split across two writes
	if _, err := good.Write([]byte(msg[:cut])); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if _, err := good.Write([]byte(msg[cut:])); err != nil {
		t.Fatal(err)
	}
	_ = good.SetReadDeadline(time.Now().Add(3 * time.Second))
	status, err := bufio.NewReader(good).ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "SIP/2.0 200") {
		t.Fatalf("OPTIONS over TCP: %q %v", status, err)
	}
	if closedWithin(good, time.Second) {
		t.Fatal("a connection whose message was complete was closed before its idle timeout")
	}
}

// FuzzHeaderEnd: however the stream is cut into reads, the end of the
// header block is found exactly when the bytes so far contain a blank
// line.
func FuzzHeaderEnd(f *testing.F) {
	f.Add([]byte("OPTIONS sip:x SIP/2.0\r\nVia: y\r\n\r\n"), uint8(3))
	f.Add([]byte("\r\n\r\n"), uint8(1))
	f.Add([]byte("INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/TCP x"), uint8(7))
	f.Add([]byte("\r\n\r\r\n\n\r\n"), uint8(2))
	f.Fuzz(func(t *testing.T, stream []byte, step uint8) {
		size := int(step)%16 + 1
		c := &headerConn{}
		for i := 0; i < len(stream); i += size {
			end := min(i+size, len(stream))
			got := c.ends(stream[i:end])
			want := bytes.Contains(stream[:end], headerEnd)
			if got != want {
				t.Fatalf("after %q: ends = %v, want %v", stream[:end], got, want)
			}
			if got {
				return
			}
		}
	})
}
