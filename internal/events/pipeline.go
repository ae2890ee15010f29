package events

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// Config selects and configures the publishers. internal/config reads it
// from Routr's environment variables (and ours); see docs/configuration.md.
type Config struct {
	// NATSEnabled turns the NATS publisher on (NATS_PUBLISHER_ENABLED).
	NATSEnabled bool
	// NATSURL is the server URL, host:port or comma-separated list
	// (NATS_PUBLISHER_URL); default DefaultNATSURL.
	NATSURL string
	// Subject is the base subject (NATS_PUBLISHER_SUBJECT); default "routr".
	Subject string
	// ConsoleEnabled also writes every event to the log
	// (CONSOLE_PUBLISHER_ENABLED).
	ConsoleEnabled bool
	// Durable publishes into a JetStream stream instead of core NATS
	// (EVENTS_DURABLE, beyond).
	Durable bool
	// Stream names the JetStream stream; default DefaultStream.
	Stream string
	// Replicas of the stream when the publisher creates it
	// (EVENTS_STREAM_REPLICAS, beyond); 0 means 3, or 1 when the NATS
	// cluster is smaller.
	Replicas int
	// QueueBound is the most events kept per publisher while it is slow or
	// away (EVENTS_QUEUE_SIZE, beyond); default DefaultQueueBound.
	QueueBound int
}

// ParseEnabled parses a boolean setting like Java's Boolean.parseBoolean:
// true only for "true" in any case.
func ParseEnabled(s string) bool { return strings.EqualFold(s, "true") }

// PipelineOptions are the process-wide things a Pipeline uses.
type PipelineOptions struct {
	// Registerer receives the metrics of the queues and the connection.
	Registerer prometheus.Registerer
	// Logger receives the pipeline's reports, and the events themselves
	// when the console publisher is on; nil means slog.Default().
	Logger *slog.Logger
	// Embedded, when set, is the in-process server (EMBEDDED_NATS) the
	// NATS publisher talks to through an in-memory connection instead of
	// loopback TCP: the round trip that confirms a batch then costs no
	// system calls. Config.NATSURL is then only shown in logs.
	Embedded *EmbeddedServer
}

// Pipeline is the Sink the edge publishes into: a Queue per enabled
// publisher (NATS core or JetStream, console) behind a Fanout. With no
// publisher enabled it discards events.
type Pipeline struct {
	sink    Sink
	queues  []*Queue
	nats    *Queue // the NATS publisher's queue, if any: see OnSent
	closers []func()
}

// NewPipeline builds the publishers c enables. NATS is connected in the
// background: this does not wait for, or fail on, an unreachable server.
func NewPipeline(c Config, o PipelineOptions) (*Pipeline, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	p := &Pipeline{}
	var fan Fanout
	add := func(name string, pub Publisher) error {
		q, err := NewQueue(pub, QueueOptions{Name: name, Bound: c.QueueBound, Registerer: o.Registerer, Logger: o.Logger})
		if err != nil {
			return err
		}
		p.queues = append(p.queues, q)
		fan = append(fan, q)
		return nil
	}
	if c.NATSEnabled {
		conn := ConnOptions{URL: c.NATSURL, Logger: o.Logger, Registerer: o.Registerer}
		if o.Embedded != nil {
			conn.Extra = append(conn.Extra, nats.InProcessServer(o.Embedded))
		}
		var pub Publisher
		if c.Durable {
			js, err := NewJetStreamPublisher(JetStreamOptions{ConnOptions: conn, Subject: c.Subject, Stream: c.Stream, Replicas: c.Replicas})
			if err != nil {
				return nil, err
			}
			p.closers = append(p.closers, js.Close)
			pub = js
		} else {
			nc, err := NewNATSPublisher(NATSOptions{ConnOptions: conn, Subject: c.Subject})
			if err != nil {
				return nil, err
			}
			p.closers = append(p.closers, nc.Close)
			pub = nc
		}
		if err := add("nats", pub); err != nil {
			p.closeAll()
			return nil, err
		}
		p.nats = p.queues[len(p.queues)-1]
		o.Logger.Info("NATS events publisher enabled", "url", c.NATSURL, "subject", c.Subject, "durable", c.Durable)
	}
	if c.ConsoleEnabled {
		if err := add("console", ConsolePublisher{Logger: o.Logger}); err != nil {
			p.closeAll()
			return nil, err
		}
		o.Logger.Info("console events publisher enabled")
	}
	switch len(fan) {
	case 0:
		p.sink = Discard{}
	case 1:
		p.sink = fan[0]
	default:
		p.sink = fan
	}
	return p, nil
}

// Publish hands e to every enabled publisher's queue; it never blocks.
func (p *Pipeline) Publish(e Event) { p.sink.Publish(e) }

// Backlogged reports whether a working publisher is falling behind (see
// Queue.Backlogged): any queue's is enough.
func (p *Pipeline) Backlogged() bool {
	for _, q := range p.queues {
		if q.Backlogged() {
			return true
		}
	}
	return false
}

// OnSent implements Confirmer: f learns of the events the NATS server
// confirmed (its ack in durable mode, a PING/PONG round trip otherwise).
// Without a NATS publisher it reports false.
func (p *Pipeline) OnSent(f func([]Event)) bool {
	if p.nats == nil {
		return false
	}
	p.nats.OnSent(f)
	return true
}

// Run drains every queue until ctx ends or Close has flushed them.
func (p *Pipeline) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, len(p.queues))
	for i, q := range p.queues {
		wg.Go(func() { errs[i] = q.Run(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Close flushes every queue (bounded by ctx), then closes the connections.
func (p *Pipeline) Close(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, len(p.queues))
	for i, q := range p.queues {
		wg.Go(func() { errs[i] = q.Close(ctx) })
	}
	wg.Wait()
	p.closeAll()
	return errors.Join(errs...)
}

func (p *Pipeline) closeAll() {
	for _, c := range p.closers {
		c()
	}
	p.closers = nil
}
