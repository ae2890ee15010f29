package edge

import (
	"bytes"
	"net"
	"sync/atomic"
	"time"
)

// headerListener closes plain TCP connections that start a message and
// never finish its header block. The connection limits give a silent
// connection HandshakeTimeout to send its first bytes, but once any byte
// came the idle timeout (an hour by default) applied: a peer that sent
// "INVITE sip:" and stopped held a connection slot and its goroutine for
// an hour. Here the first message's header block (up to the blank line,
// or a CRLF keep-alive) must be complete by the same deadline.
//
// Only TCP: over TLS the bytes read here are ciphertext, and over WS the
// handshake already ends within the deadline.
type headerListener struct {
	net.Listener
	limit time.Duration
}

func (l headerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &headerConn{Conn: c, deadline: time.Now().Add(l.limit)}, nil
}

// headerConn keeps its read deadline no later than deadline until the end
// of the first header block has been read.
type headerConn struct {
	net.Conn
	deadline time.Time
	done     atomic.Bool
	// tail holds the last bytes read, for a blank line split across
	// reads; only the reading goroutine touches it.
	tail []byte
}

var headerEnd = []byte("\r\n\r\n")

func (c *headerConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && !c.done.Load() && c.ends(b[:n]) {
		c.done.Store(true)
	}
	return n, err
}

// ends reports whether the bytes read so far, p being the latest, hold
// the end of a header block.
func (c *headerConn) ends(p []byte) bool {
	seen := append(c.tail, p...)
	if bytes.Contains(seen, headerEnd) {
		c.tail = nil
		return true
	}
	c.tail = append(c.tail[:0], seen[max(0, len(seen)-len(headerEnd)+1):]...)
	return false
}

func (c *headerConn) clamp(t time.Time) time.Time {
	if !c.done.Load() && (t.IsZero() || t.After(c.deadline)) {
		return c.deadline
	}
	return t
}

func (c *headerConn) SetReadDeadline(t time.Time) error {
	return c.Conn.SetReadDeadline(c.clamp(t))
}

func (c *headerConn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.Conn.SetReadDeadline(c.clamp(t))
}
