package edge

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
)

// ConnLimits bound the connections of the stream listeners (tcp, tls, ws,
// wss), so that peers that vanish, stall or never speak cost a bounded
// amount and never hold up the edge.
type ConnLimits struct {
	// Max is how many accepted connections may be open at once across
	// all stream listeners; one more is closed as soon as it is accepted.
	// Default 50,000.
	Max int
	// MaxPerSource is how many of them one source IP address may hold;
	// one more from it is closed as soon as it is accepted. Default 1,000.
	MaxPerSource int
	// IdleTimeout closes a connection that carries nothing for this long.
	// A registered agent refreshes before its registration expires, so
	// the default is the longest expiry the registrar grants plus a
	// minute.
	IdleTimeout time.Duration
	// WriteTimeout bounds one write: a peer that stops reading loses its
	// connection instead of blocking the goroutine writing to it.
	// Default 10 s.
	WriteTimeout time.Duration
	// HandshakeTimeout bounds the time from accepting a connection to its
	// first bytes (and, for tls and wss, the TLS handshake). Default 10 s.
	HandshakeTimeout time.Duration

	// sendBuffer, when set, fixes the kernel send buffer of accepted
	// connections (tests: a stalled peer blocks writes sooner).
	sendBuffer int
}

func (l ConnLimits) withDefaults(maxExpires time.Duration) ConnLimits {
	if l.Max <= 0 {
		l.Max = 50000
	}
	if l.MaxPerSource <= 0 {
		l.MaxPerSource = 1000
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = maxExpires + time.Minute
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = 10 * time.Second
	}
	if l.HandshakeTimeout <= 0 {
		l.HandshakeTimeout = 10 * time.Second
	}
	return l
}

// transports are sipgo's stream transports with our timeouts; UDP keeps
// sipgo's defaults. sipgo gives transports built this way its
// process-wide logger (see SetStackLogger).
func (l ConnLimits) transports() sip.TransportsConfig {
	tcp := func() *sip.TransportTCP {
		return &sip.TransportTCP{ReadTimeout: l.IdleTimeout, WriteTimeout: l.WriteTimeout}
	}
	ws := func() *sip.TransportWS {
		return &sip.TransportWS{ReadTimeout: l.IdleTimeout, WriteTimeout: l.WriteTimeout}
	}
	return sip.TransportsConfig{
		TCP: tcp(),
		TLS: &sip.TransportTLS{TransportTCP: tcp()},
		WS:  ws(),
		WSS: &sip.TransportWSS{TransportWS: ws()},
	}
}

// listenStream binds a stream listener: limited in connections, and for
// tls and wss wrapped in TLS.
func (s *Server) listenStream(proto string, l Listener) (net.Listener, error) {
	if (proto == "tls" || proto == "wss") && l.TLS == nil {
		return nil, fmt.Errorf("listen %s %s: no TLS configuration (certificate)", proto, l.Addr)
	}
	ln, err := net.Listen("tcp", l.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s %s: %w", proto, l.Addr, err)
	}
	var out net.Listener = &limitListener{Listener: ln, conns: s.conns, handshake: s.opts.Connections.HandshakeTimeout, sendBuffer: s.opts.Connections.sendBuffer, proto: proto, bad: s.limits.bad}
	if proto == "tls" || proto == "wss" {
		out = tls.NewListener(out, l.TLS)
	}
	if proto == "tcp" {
		out = headerListener{Listener: out, limit: s.opts.Connections.HandshakeTimeout} // slowloris.go
	}
	return out, nil
}

func (s *Server) streamServer(proto string, ln net.Listener) func() error {
	switch proto {
	case "tls":
		return func() error { return s.srv.ServeTLS(ln) }
	case "ws":
		return func() error { return s.srv.ServeWS(ln) }
	case "wss":
		return func() error { return s.srv.ServeWSS(ln) }
	default:
		return func() error { return s.srv.ServeTCP(ln) }
	}
}

// connTracker counts the open accepted connections against a maximum and
// knows which remote addresses still have a working one.
type connTracker struct {
	max          int64
	maxPerSource int
	open         atomic.Int64
	refused      *prometheus.CounterVec

	mu   sync.Mutex
	live map[string]*trackedConn // by remote address
	// perSource counts the open connections of each source address; it
	// holds no more entries than there are open connections.
	perSource map[netip.Addr]int
}

func newConnTracker(l ConnLimits, reg prometheus.Registerer) (*connTracker, error) {
	c := &connTracker{
		max:          int64(l.Max),
		maxPerSource: l.MaxPerSource,
		live:         make(map[string]*trackedConn),
		perSource:    make(map[netip.Addr]int),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "routr", Subsystem: "sip", Name: "connections_refused_total",
			Help: "Stream connections closed on accept because a connection limit was reached, by limit (total, source).",
		}, []string{"limit"}),
	}
	open := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "routr", Subsystem: "sip", Name: "connections_open",
		Help: "Accepted TCP, TLS, WS and WSS connections open now.",
	}, func() float64 { return float64(c.open.Load()) })
	for _, col := range []prometheus.Collector{c.refused, open} {
		if err := reg.Register(col); err != nil {
			return nil, fmt.Errorf("edge: metrics: %w", err)
		}
	}
	return c, nil
}

// Open is how many accepted connections are open.
func (c *connTracker) Open() int64 { return c.open.Load() }

// alive reports whether the connection accepted from addr (host:port) is
// still open and has not failed.
func (c *connTracker) alive(addr string) bool {
	c.mu.Lock()
	_, ok := c.live[addr]
	c.mu.Unlock()
	return ok
}

// claim takes a place for one more connection from src, unless src
// holds its maximum already.
func (c *connTracker) claim(src netip.Addr) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.perSource[src] >= c.maxPerSource {
		return false
	}
	c.perSource[src]++
	return true
}

func (c *connTracker) release(src netip.Addr) {
	c.mu.Lock()
	if n := c.perSource[src]; n <= 1 {
		delete(c.perSource, src)
	} else {
		c.perSource[src] = n - 1
	}
	c.mu.Unlock()
}

func (c *connTracker) add(tc *trackedConn) {
	c.mu.Lock()
	c.live[tc.raddr] = tc
	c.mu.Unlock()
}

// dead forgets tc as soon as it fails or closes: before sipgo, which
// first ends the transactions of a dead connection and only then takes it
// out of its pool, lets anyone route to it again.
func (c *connTracker) dead(tc *trackedConn) {
	c.mu.Lock()
	if c.live[tc.raddr] == tc {
		delete(c.live, tc.raddr)
	}
	c.mu.Unlock()
}

// limitListener refuses connections over the limit and gives each one it
// accepts a deadline for its first bytes.
type limitListener struct {
	net.Listener
	conns      *connTracker
	handshake  time.Duration
	sendBuffer int
	// proto and bad answer what sipgo cannot parse on these connections.
	proto string
	bad   *badMessages
}

func (l *limitListener) Accept() (net.Conn, error) {
	var backoff time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !acceptRetryable(err) {
				return nil, err
			}
			// Out of file descriptors, or a connection gone before it
			// was accepted: sipgo stops serving on any Accept error, so
			// wait and try again, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if tc, ok := c.(*net.TCPConn); ok && l.sendBuffer > 0 {
			_ = tc.SetWriteBuffer(l.sendBuffer)
		}
		if l.conns.open.Add(1) > l.conns.max {
			l.conns.open.Add(-1)
			l.conns.refused.WithLabelValues("total").Inc()
			_ = c.Close()
			continue
		}
		src := remoteIP(c)
		if !l.conns.claim(src) {
			l.conns.open.Add(-1)
			l.conns.refused.WithLabelValues("source").Inc()
			_ = c.Close()
			continue
		}
		tc := &trackedConn{Conn: c, conns: l.conns, raddr: c.RemoteAddr().String(), src: src, first: time.Now().Add(l.handshake), proto: l.proto, bad: l.bad}
		_ = c.SetReadDeadline(tc.first)
		l.conns.add(tc)
		return tc, nil
	}
}

// remoteIP is the address a connection comes from, IPv4-mapped
// addresses unmapped.
func remoteIP(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		a, _ := netip.AddrFromSlice(ta.IP)
		return a.Unmap()
	}
	ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	return ap.Addr().Unmap()
}

func acceptRetryable(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) || errors.Is(err, syscall.ECONNABORTED)
}

// trackedConn releases its place on Close, and until its first bytes
// arrive keeps any read deadline no later than the handshake deadline:
// sipgo sets its own (long) idle deadline before every read.
type trackedConn struct {
	net.Conn
	conns   *connTracker
	raddr   string
	src     netip.Addr
	first   time.Time
	spoke   atomic.Bool
	closing sync.Once
	// proto, bad and gid: see parseFailed. gid is the goroutine that
	// first read from the connection, sipgo's reader for it (the TLS
	// handshake and the WebSocket upgrade run there too).
	proto string
	bad   *badMessages
	gid   atomic.Uint64
}

func (c *trackedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && !c.spoke.Load() {
		c.spoke.Store(true)
		if c.bad != nil {
			id := goid()
			c.gid.Store(id)
			readers.Store(id, c)
		}
	}
	if err != nil {
		// sipgo drops a connection on any read error.
		c.conns.dead(c)
	}
	return n, err
}

// Write gives up on the connection at the first failed write: a write
// that timed out (the peer stopped reading) may have left half a message
// on the stream, and every later write would wait out its own deadline.
// Closing it ends sipgo's reader and with it the connection's transactions.
func (c *trackedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err != nil {
		c.conns.dead(c)
		_ = c.Conn.Close()
	}
	return n, err
}

func (c *trackedConn) clamp(t time.Time) time.Time {
	if !c.spoke.Load() && (t.IsZero() || t.After(c.first)) {
		return c.first
	}
	return t
}

func (c *trackedConn) SetReadDeadline(t time.Time) error {
	return c.Conn.SetReadDeadline(c.clamp(t))
}

func (c *trackedConn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.Conn.SetReadDeadline(c.clamp(t))
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.closing.Do(func() {
		c.conns.dead(c)
		c.conns.open.Add(-1)
		c.conns.release(c.src)
		if id := c.gid.Load(); id != 0 {
			readers.CompareAndDelete(id, c)
		}
	})
	return err
}
