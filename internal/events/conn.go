package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultNATSURL is the NATS_PUBLISHER_URL default.
const DefaultNATSURL = "nats://localhost:4222"

// DefaultSubject is the NATS_PUBLISHER_SUBJECT default: events go to
// routr.call.started and so on.
const DefaultSubject = "routr"

// ParseNATSURLs splits a NATS_PUBLISHER_URL value into server URLs: a URL,
// "host:port" without a scheme (nats:// is assumed), or a comma-separated
// list of either. Empty means DefaultNATSURL.
func ParseNATSURLs(s string) ([]string, error) {
	var urls []string
	for _, u := range strings.Split(s, ",") {
		u = strings.TrimSpace(u)
		if u == "" {
			continue
		}
		if !strings.Contains(u, "://") {
			u = "nats://" + u
		}
		p, err := url.Parse(u)
		if err != nil {
			return nil, fmt.Errorf("NATS URL %q: %w", u, err)
		}
		if p.Host == "" {
			return nil, fmt.Errorf("NATS URL %q: no host", u)
		}
		urls = append(urls, u)
	}
	if len(urls) == 0 {
		urls = []string{DefaultNATSURL}
	}
	return urls, nil
}

// ValidateSubject checks that base can prefix event subjects: non-empty
// tokens separated by '.', without spaces or the wildcards '*' and '>'.
func ValidateSubject(base string) error {
	if base == "" {
		return errors.New("subject is empty")
	}
	for _, tok := range strings.Split(base, ".") {
		if tok == "" || strings.ContainsAny(tok, " \t\r\n*>") {
			return fmt.Errorf("subject %q: tokens must be non-empty, without spaces or wildcards", base)
		}
	}
	return nil
}

// ConnOptions are the connection settings shared by the NATS publishers.
type ConnOptions struct {
	// URL is a NATS_PUBLISHER_URL value (see ParseNATSURLs).
	URL string
	// Name is the client name the server shows; default "routr".
	Name string
	// ReconnectWait is the pause between reconnect attempts; default 1s.
	ReconnectWait time.Duration
	// Logger receives connection state changes; nil means slog.Default().
	Logger *slog.Logger
	// Registerer receives routr_events_nats_connected; nil registers nothing.
	Registerer prometheus.Registerer
	// Extra are more client options (TLS, credentials...), applied last.
	Extra []nats.Option
}

// conn is a NATS connection made in the background, so that the process
// starts while NATS is unreachable, and reconnected forever by nats.go.
// nats.go's reconnect buffer is off: while disconnected, publishing fails
// at once, and the Queue keeps the events, within its bound and counted,
// instead of nats.go, whose buffer drops silently when it overflows.
type conn struct {
	log        *slog.Logger
	connecting chan struct{} // closed when the first Connect call returned

	mu     sync.Mutex
	nc     *nats.Conn
	err    error         // Connect failed for good (bad options)
	up     chan struct{} // closed while connected, replaced on disconnect
	closed bool
}

func dial(o ConnOptions) (*conn, error) {
	urls, err := ParseNATSURLs(o.URL)
	if err != nil {
		return nil, err
	}
	if o.Name == "" {
		o.Name = "routr"
	}
	if o.ReconnectWait <= 0 {
		o.ReconnectWait = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	c := &conn{
		log:        o.Logger.With("nats", strings.Join(urls, ",")),
		connecting: make(chan struct{}),
		up:         make(chan struct{}),
	}
	if o.Registerer != nil {
		g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "routr", Subsystem: "events", Name: "nats_connected",
			Help: "1 while the events publisher is connected to NATS.",
		}, func() float64 {
			if c.connected() {
				return 1
			}
			return 0
		})
		if err := o.Registerer.Register(g); err != nil {
			return nil, fmt.Errorf("register NATS metrics: %w", err)
		}
	}
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(o.ReconnectWait),
		nats.ReconnectBufSize(-1),
		nats.PingInterval(20 * time.Second),
		nats.MaxPingsOutstanding(3),
		nats.ConnectHandler(func(nc *nats.Conn) {
			c.setUp(true)
			c.log.Info("events publisher connected to NATS", "server", nc.ConnectedUrlRedacted())
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			c.setUp(true)
			c.log.Info("events publisher reconnected to NATS", "server", nc.ConnectedUrlRedacted())
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			c.setUp(false)
			if err != nil {
				c.log.Warn("events publisher disconnected from NATS, events are kept until it is back", "error", err)
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			c.log.Warn("NATS error", "error", err)
		}),
	}
	opts = append(opts, o.Extra...)
	go func() {
		defer close(c.connecting)
		nc, err := nats.Connect(strings.Join(urls, ","), opts...)
		c.mu.Lock()
		defer c.mu.Unlock()
		switch {
		case err != nil:
			c.err = err
			c.log.Error("events publisher cannot use NATS", "error", err)
		case c.closed:
			nc.Close()
		default:
			c.nc = nc
		}
	}()
	return c, nil
}

func (c *conn) setUp(up bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if isClosedChan(c.up) != up {
		if up {
			close(c.up)
		} else {
			c.up = make(chan struct{})
		}
	}
}

func (c *conn) connected() bool {
	c.mu.Lock()
	nc := c.nc
	c.mu.Unlock()
	return nc != nil && nc.IsConnected()
}

// wait returns the connection once it is connected, or ErrDisconnected
// (wrapped) when ctx ends first.
func (c *conn) wait(ctx context.Context) (*nats.Conn, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		c.mu.Lock()
		nc, up, err, closed := c.nc, c.up, c.err, c.closed
		c.mu.Unlock()
		switch {
		case closed:
			return nil, fmt.Errorf("%w: publisher closed", ErrDisconnected)
		case err != nil:
			return nil, fmt.Errorf("NATS connection: %w", err)
		case nc != nil && nc.IsConnected():
			return nc, nil
		}
		// The handlers run asynchronously, so up may lag the status:
		// poll as well, and never spin on an already-closed up.
		var upc <-chan struct{} = up
		if isClosedChan(up) {
			upc = nil
		}
		if timer == nil {
			timer = time.NewTimer(100 * time.Millisecond)
		} else {
			timer.Reset(100 * time.Millisecond)
		}
		select {
		case <-upc:
		case <-timer.C:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", ErrDisconnected, context.Cause(ctx))
		}
	}
}

// close closes the connection, waiting for a Connect still under way.
func (c *conn) close() {
	c.mu.Lock()
	c.closed = true
	nc := c.nc
	c.mu.Unlock()
	<-c.connecting
	if nc == nil {
		c.mu.Lock()
		nc = c.nc
		c.mu.Unlock()
	}
	if nc != nil {
		nc.Close()
	}
}

func isClosedChan(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Header names every published message carries.
const (
	// HeaderMsgID is JetStream's de-duplication header; it holds the event id.
	HeaderMsgID = "Nats-Msg-Id"
	// HeaderEventID holds the event id.
	HeaderEventID = "Routr-Event-Id"
	// HeaderEventType holds the event type, e.g. call.started.
	HeaderEventType = "Routr-Event-Type"
)

// subjects maps event types to "<base>.<type>" without allocating for the
// known types.
type subjects struct {
	base  string
	known map[string]string
}

func newSubjects(base string) subjects {
	s := subjects{base: base, known: make(map[string]string)}
	for _, t := range Types() {
		s.known[t] = base + "." + t
	}
	return s
}

func (s subjects) of(eventType string) string {
	if subj, ok := s.known[eventType]; ok {
		return subj
	}
	return s.base + "." + eventType
}
