package edge

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
)

// Limits bound what the network can make the edge hold. Zero values take
// the defaults given per field.
type Limits struct {
	// MaxMessageSize is the largest SIP message taken, in bytes: a UDP
	// datagram, a message on a TCP or TLS stream, a WebSocket message.
	// A larger one is answered 513 Message Too Large when a response can
	// be formed from its start, else dropped; on TCP and TLS the
	// connection is then closed (the stream cannot be resynchronized),
	// and the 513 needs the message's start in the same read as the
	// excess (sipgo keeps earlier reads to itself).
	// UDP datagrams and WebSocket messages are read into 32 KiB, so at
	// most 32,767 bytes go over them whatever the setting. Default 32,768.
	MaxMessageSize int
	// MaxTransactions caps the server transactions alive at once: being
	// handled, or finished and kept to absorb retransmissions
	// (SetTransactionLinger). When full, a new request is answered 503
	// Service Unavailable with Retry-After and its transaction ended at
	// once; ACK, CANCEL and in-dialog BYE are still taken, so calls can
	// end, and a retransmission never reaches the limit (its transaction
	// absorbs it). Default 250,000: about 4 KB each (a challenged
	// REGISTER over UDP, measured), near 1 GB in all.
	MaxTransactions int
	// RetryAfter is the Retry-After of those 503s. Default 5 s.
	RetryAfter time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.MaxMessageSize <= 0 {
		l.MaxMessageSize = 32768
	}
	if l.MaxTransactions <= 0 {
		l.MaxTransactions = 250000
	}
	if l.RetryAfter <= 0 {
		l.RetryAfter = 5 * time.Second
	}
	return l
}

// limits applies Limits.
type limits struct {
	opts       Limits
	bad        *badMessages
	alive      atomic.Int64
	refused    prometheus.Counter
	retryAfter string
	// backlogged, when set, tells that the events publisher is falling
	// behind (events.Pipeline.Backlogged); shed counts the 503s.
	backlogged func() bool
	shed       prometheus.Counter
	// ended is given to every counted transaction; made once, so that
	// counting allocates nothing of its own per request.
	ended sip.FnTxTerminate
}

func newLimits(o Limits, server string, log *slog.Logger, reg prometheus.Registerer) (*limits, error) {
	bad, err := newBadMessages(server, log, reg)
	if err != nil {
		return nil, err
	}
	l := &limits{
		opts:       o,
		bad:        bad,
		retryAfter: strconv.Itoa(int((o.RetryAfter + time.Second - 1) / time.Second)),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "routr", Subsystem: "sip", Name: "server_transactions_refused_total",
			Help: "Requests answered 503 because the server transaction limit was reached.",
		}),
		shed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "routr", Subsystem: "sip", Name: "events_backlog_refused_total",
			Help: "New calls and registrations answered 503 while the events publisher was falling behind (half its queue waiting).",
		}),
	}
	l.ended = func(string, error) { l.alive.Add(-1) }
	alive := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "routr", Subsystem: "sip", Name: "server_transactions",
		Help: "Server transactions alive: being handled, or finished and kept to absorb retransmissions.",
	}, func() float64 { return float64(l.alive.Load()) })
	for _, c := range []prometheus.Collector{l.refused, l.shed, alive} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("edge: register metrics: %w", err)
		}
	}
	return l, nil
}

// parser is sipgo's parser with the stream message size limit.
func (l *limits) parser() *sip.Parser {
	p := sip.NewParser()
	p.MaxMessageLength = l.opts.MaxMessageSize
	return p
}

// readFilter sees every read of sipgo's transports before parsing; it
// enforces the size limit on WebSocket messages (sipgo's stream parser
// does on TCP and TLS, udpReader on UDP). WebSocket frames its messages,
// so an oversized one is answered and skipped, and the connection stays.
func (l *limits) readFilter(p sip.TransportReadProps, data []byte) ([]byte, error) {
	if len(data) <= l.opts.MaxMessageSize && len(data) < int(sip.TransportBufferReadSize) {
		return data, nil
	}
	if p.Transport != "WS" && p.Transport != "WSS" || p.RemoteAddr == nil {
		return data, nil
	}
	tp, raddr := strings.ToLower(p.Transport), p.RemoteAddr.String()
	l.bad.handle(tp, raddr, data, nil, true, l.bad.streamWriter(tp, raddr))
	return nil, nil
}

// limited applies the transaction limit after the flood guard: what the
// guard drops silently (a banned source, a scanner) stays unanswered
// even when the edge is full, and its transaction ends at once anyway.
func (s *Server) limited(next Handler) Handler {
	return HandlerFunc(func(r *Request) {
		if s.limits.admit(s, r) {
			next.ServeSIP(r)
		}
	})
}

// admit counts r's server transaction until it ends, or, when the limit
// is reached, answers 503 and ends it at once. It reports whether r
// should be handled.
func (l *limits) admit(s *Server, r *Request) bool {
	if r.Tx == nil {
		return true
	}
	exempt := r.Method == sip.ACK || r.Method == sip.CANCEL || r.Method == sip.BYE && r.inDialog()
	if !exempt && l.alive.Load() >= int64(l.opts.MaxTransactions) {
		l.refused.Inc()
		s.reply(r, 503, "Service Unavailable", sip.NewHeader("Retry-After", l.retryAfter))
		r.Tx.Terminate()
		return false
	}
	// What would make events (a new call, a registration) waits while
	// the publisher falls behind: answered 503, nothing is lost.
	if l.backlogged != nil && (r.Method == sip.REGISTER || r.Method == sip.INVITE && !r.inDialog()) && l.backlogged() {
		l.shed.Inc()
		s.reply(r, 503, "Service Unavailable", sip.NewHeader("Retry-After", l.retryAfter))
		r.Tx.Terminate()
		return false
	}
	l.alive.Add(1)
	if !r.Tx.OnTerminate(l.ended) {
		l.alive.Add(-1)
	}
	return true
}
