package edge

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
)

// Messages sipgo cannot parse.
//
// sipgo reports a message it cannot parse only to its logger ("failed to
// parse", with the bytes and the error), from the goroutine that read
// them, and then drops it (UDP) or closes the connection (streams). So
// the edge hooks the logger: every goroutine that reads for the edge (the
// one serving a UDP socket, the one reading each accepted connection)
// registers under its goroutine id, and the hook looks up the failing
// goroutine to learn where the bytes came from and how to answer.
// Valid messages never take this path: the only cost on theirs is one
// goroutine-id lookup per UDP socket and per accepted connection, once.

// msgReader is a goroutine reading SIP for the edge.
type msgReader interface {
	// parseFailed is called, on the reading goroutine, with the bytes
	// sipgo could not parse and its error.
	parseFailed(data []byte, err error)
}

// readers maps goroutine ids to the msgReader running on them. It is
// process-wide because sipgo's logger is.
var readers sync.Map // uint64 -> msgReader

// goid returns the current goroutine's id, read from the header line of
// its stack trace ("goroutine 42 [running]:").
func goid() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	var id uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uint64(c-'0')
	}
	return id
}

func init() {
	// Until SetStackLogger is called, sipgo's process-wide logger, which
	// the tcp, tls, ws and wss transports log to, is slog's default: give
	// it the hook too.
	sip.SetDefaultLogger(slog.New(parseHook{}))
	// sipgo refuses to send anything over UDP larger than 1,300 bytes
	// (an MTU guess meant for requests, RFC 3261 18.1.1), so a response
	// copying long headers was never sent (RFC 4475 longreq). Let the
	// kernel fragment instead, as other proxies do.
	sip.UDPMTUSize = 65507 + 200
}

// parseHook passes sipgo's "failed to parse" records to the msgReader of
// the goroutine that logs them, and everything else to next (slog's
// default handler when nil).
type parseHook struct{ next slog.Handler }

func (h parseHook) handler() slog.Handler {
	if h.next == nil {
		return slog.Default().Handler()
	}
	return h.next
}

func (h parseHook) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelError || h.handler().Enabled(ctx, l)
}

func (h parseHook) Handle(ctx context.Context, r slog.Record) error {
	if r.Message != "failed to parse" {
		if !h.handler().Enabled(ctx, r.Level) {
			return nil
		}
		return h.handler().Handle(ctx, r)
	}
	var data string
	var perr error
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "data":
			data = a.Value.String()
		case "error":
			perr, _ = a.Value.Any().(error)
		}
		return true
	})
	if rd, ok := readers.Load(goid()); ok {
		rd.(msgReader).parseFailed([]byte(data), perr)
		return nil
	}
	// A connection the edge dialed itself: nobody to answer, and sipgo
	// closes it.
	if orphans.allow() && h.handler().Enabled(ctx, slog.LevelDebug) {
		nr := slog.NewRecord(r.Time, slog.LevelDebug, "unparsable SIP message on an outbound connection", r.PC)
		nr.AddAttrs(slog.Any("error", perr))
		return h.handler().Handle(ctx, nr)
	}
	return nil
}

func (h parseHook) WithAttrs(as []slog.Attr) slog.Handler {
	return parseHook{next: h.handler().WithAttrs(as)}
}

func (h parseHook) WithGroup(name string) slog.Handler {
	return parseHook{next: h.handler().WithGroup(name)}
}

// orphans rate-limits the log of parse failures no reader claims.
var orphans = &everySecond{}

// everySecond lets one event a second through and counts the others.
type everySecond struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (e *everySecond) allow() bool {
	ok, _ := e.allowN()
	return ok
}

// allowN reports whether to log now and how many were held back since
// the last time.
func (e *everySecond) allowN() (bool, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	if now.Sub(e.last) < time.Second {
		e.suppressed++
		return false, 0
	}
	e.last = now
	n := e.suppressed
	e.suppressed = 0
	return true, n
}

// badMessages answers, counts and logs the messages an edge could not
// take: unparsable ones (400, or 416 for a Request-URI scheme we do not
// serve) and oversized ones (513).
type badMessages struct {
	server string
	log    *slog.Logger
	// tl finds the connection a stream message came on; set once the
	// user agent exists.
	tl      *sip.TransportLayer
	counter *prometheus.CounterVec
	logged  everySecond
}

func newBadMessages(server string, log *slog.Logger, reg prometheus.Registerer) (*badMessages, error) {
	b := &badMessages{
		server: server,
		log:    log,
		counter: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "routr", Subsystem: "sip", Name: "rejected_messages_total",
			Help: "Messages the edge could not take, by transport, reason (malformed, too_large) and action (answered, dropped).",
		}, []string{"transport", "reason", "action"}),
	}
	if err := reg.Register(b.counter); err != nil {
		return nil, fmt.Errorf("edge: register metrics: %w", err)
	}
	return b, nil
}

// handle answers msg, which came over transport from src, if a response
// can be formed from it, through write; otherwise it only counts it.
// tooLarge says msg was over the size limit (perr is then nil).
func (b *badMessages) handle(transport, src string, msg []byte, perr error, tooLarge bool, write func([]byte) error) {
	reason := "malformed"
	if tooLarge {
		reason = "too_large"
	}
	s := salvage(msg, transport == "udp" && !tooLarge)
	code, phrase := 400, "Bad Request ("+s.problem+")"
	switch {
	case tooLarge:
		code, phrase = 513, "Message Too Large"
	case s.code == 416:
		code, phrase = 416, s.problem
	case s.problem == "":
		phrase = "Bad Request (" + describe(perr) + ")"
	}
	action := "dropped"
	var werr error
	if s.answerable() {
		werr = write(s.response(code, phrase, b.server, newTag()))
		if werr == nil {
			action = "answered"
		}
	}
	b.counter.WithLabelValues(transport, reason, action).Inc()
	if ok, held := b.logged.allowN(); ok {
		attrs := []any{"transport", transport, "source", src, "reason", reason, "action", action, "suppressed", held}
		if action == "answered" {
			attrs = append(attrs, "status", code, "phrase", phrase)
		}
		if perr != nil {
			attrs = append(attrs, "error", perr)
		}
		if werr != nil {
			attrs = append(attrs, "write_error", werr)
		}
		b.log.Debug("rejected SIP message", attrs...)
	}
}

// describe turns a sipgo parse error into a short reason phrase: only
// printable ASCII, and not too long, since it may quote the message.
func describe(err error) string {
	if err == nil {
		return "unparsable message"
	}
	var sb strings.Builder
	for _, r := range err.Error() {
		if sb.Len() >= 60 {
			break
		}
		if r >= ' ' && r < 0x7f {
			sb.WriteRune(r)
		}
	}
	return sb.String()
}

func newTag() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// streamWriter writes a response on the accepted connection from raddr,
// through sipgo's connection so that TLS and WebSocket framing apply.
func (b *badMessages) streamWriter(transport, raddr string) func([]byte) error {
	return func(p []byte) error {
		if b.tl == nil {
			return errors.New("no transport layer")
		}
		pool := b.tl.Pool(transport)
		if pool == nil {
			return fmt.Errorf("no %s connections", transport)
		}
		c := pool.Get(raddr)
		if c == nil {
			return fmt.Errorf("no %s connection from %s", transport, raddr)
		}
		defer c.Ref(-1) // Get took a reference
		w, ok := c.(io.Writer)
		if !ok {
			return fmt.Errorf("%s connection is not writable", transport)
		}
		_, err := w.Write(p)
		return err
	}
}

// udpReader is a UDP socket as sipgo reads it: it remembers where the
// last datagram came from, and answers oversized datagrams itself.
type udpReader struct {
	net.PacketConn
	bad *badMessages
	max int
	// last is the source of the datagram sipgo is parsing; written and
	// read on the serving goroutine only.
	last net.Addr
}

func (u *udpReader) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := u.PacketConn.ReadFrom(b)
		// A datagram that fills the buffer may have been cut short.
		if err == nil && (n > u.max || n >= len(b)) {
			u.bad.handle("udp", addr.String(), b[:n], nil, true, u.writeTo(addr))
			continue
		}
		u.last = addr
		return n, addr, err
	}
}

func (u *udpReader) writeTo(addr net.Addr) func([]byte) error {
	return func(p []byte) error {
		_, err := u.PacketConn.WriteTo(p, addr)
		return err
	}
}

// parseFailed answers to the source address of the datagram (as with
// rport), never to a Via the message may have forged.
func (u *udpReader) parseFailed(data []byte, err error) {
	if u.last == nil {
		return
	}
	u.bad.handle("udp", u.last.String(), data, err, false, u.writeTo(u.last))
}

// serveUDP serves pc until it is closed, answering what sipgo cannot
// parse.
func (s *Server) serveUDP(pc net.PacketConn) error {
	u := &udpReader{PacketConn: pc, bad: s.limits.bad, max: s.opts.Limits.MaxMessageSize}
	id := goid()
	readers.Store(id, u)
	defer readers.Delete(id)
	return s.srv.ServeUDP(u)
}

// parseFailed answers the message a stream connection could not frame or
// parse; sipgo closes the connection next, there being no boundary to
// resume at.
func (c *trackedConn) parseFailed(data []byte, err error) {
	if c.bad == nil {
		return
	}
	tooLarge := errors.Is(err, sip.ErrMessageTooLarge)
	msg := data
	if !tooLarge {
		msg = failingMessage(data)
	}
	c.bad.handle(c.proto, c.raddr, msg, err, tooLarge, c.bad.streamWriter(c.proto, c.raddr))
}

// failingMessage finds, in the bytes of one read from a stream, the
// message sipgo failed on: the messages before it parsed and were
// handled. This second parse happens only once a read has failed.
func failingMessage(data []byte) []byte {
	for {
		data = bytes.TrimLeft(data, "\r\n")
		end := bytes.Index(data, []byte("\r\n\r\n"))
		if end < 0 {
			return data
		}
		cl := contentLength(data[:end])
		if cl < 0 || end+4+cl > len(data) {
			return data
		}
		msg := data[:end+4+cl]
		if _, err := sip.ParseMessage(msg); err != nil {
			return msg
		}
		data = data[len(msg):]
	}
}

// contentLength returns the Content-Length of a header block, or -1.
func contentLength(head []byte) int {
	for _, l := range strings.Split(string(head), "\r\n")[1:] {
		name, value, ok := strings.Cut(l, ":")
		if ok && canonicalName(name) == "Content-Length" {
			var n int
			if _, err := fmt.Sscanf(strings.TrimSpace(value), "%d", &n); err != nil || n < 0 {
				return -1
			}
			return n
		}
	}
	return -1
}
