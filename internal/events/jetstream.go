package events

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultStream is the default name of the durable events stream.
const DefaultStream = "ROUTR_EVENTS"

// JetStreamOptions configures a JetStreamPublisher.
type JetStreamOptions struct {
	ConnOptions
	// Subject is the base subject; the stream covers "<Subject>.>".
	// Empty means DefaultSubject.
	Subject string
	// Stream is the stream name; default DefaultStream. A stream of that
	// name is created when missing (file storage) and used as it is when
	// it exists.
	Stream string
	// Replicas of a stream we create; 0 means 3, or 1 when the NATS
	// cluster has fewer than three servers (or none: a single server).
	Replicas int
	// DuplicateWindow is the de-duplication window of a stream we create;
	// default 10 minutes. A re-sent event is removed as a duplicate if the
	// first copy was stored less than this long before.
	DuplicateWindow time.Duration
	// MaxAge bounds how long a stream we create keeps events; 0 keeps them
	// until the server's limits remove them.
	MaxAge time.Duration
	// MaxPending bounds the publishes awaiting their ack; default 256.
	MaxPending int
	// AckTimeout bounds the wait for one ack; default 5s.
	AckTimeout time.Duration
}

// JetStreamPublisher publishes events into a JetStream stream (durable
// mode). Every message carries Nats-Msg-Id = event id (and the
// Routr-Event-Id and Routr-Event-Type headers), so an event sent again
// after a lost ack is dropped by the server's duplicate window: each event
// is stored once. A batch is published asynchronously (at most MaxPending
// awaiting acks) and an event is confirmed when its ack arrives; the queue
// re-sends, in order, every event from the first one not acked.
type JetStreamPublisher struct {
	c        *conn
	o        JetStreamOptions
	subjects subjects

	mu       sync.Mutex
	js       jetstream.JetStream
	streamOK bool
}

// NewJetStreamPublisher starts connecting in the background and returns at
// once; the stream is looked up, or created, before the first publish.
func NewJetStreamPublisher(o JetStreamOptions) (*JetStreamPublisher, error) {
	if o.Subject == "" {
		o.Subject = DefaultSubject
	}
	if err := ValidateSubject(o.Subject); err != nil {
		return nil, err
	}
	if o.Stream == "" {
		o.Stream = DefaultStream
	}
	if o.DuplicateWindow <= 0 {
		o.DuplicateWindow = 10 * time.Minute
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 256
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = 5 * time.Second
	}
	c, err := dial(o.ConnOptions)
	if err != nil {
		return nil, err
	}
	return &JetStreamPublisher{c: c, o: o, subjects: newSubjects(o.Subject)}, nil
}

// Send publishes one event and waits for its ack.
func (p *JetStreamPublisher) Send(ctx context.Context, e Event) error {
	n, err := p.SendBatch(ctx, []Event{e})
	if n == 1 {
		return nil
	}
	return err
}

// SendBatch publishes batch asynchronously, in order, and returns how many
// events at its head were acked.
func (p *JetStreamPublisher) SendBatch(ctx context.Context, batch []Event) (int, error) {
	nc, err := p.c.wait(ctx)
	if err != nil {
		return 0, err
	}
	js, err := p.ready(ctx, nc)
	if err != nil {
		return 0, err
	}
	futures := make([]jetstream.PubAckFuture, 0, min(len(batch), p.o.MaxPending))
	var pubErr error
	for i := range batch[:min(len(batch), p.o.MaxPending)] {
		e := &batch[i]
		m := &nats.Msg{ // kept by the future: not reused
			Subject: p.subjects.of(e.Type),
			Data:    e.Body,
			Header:  nats.Header{HeaderMsgID: {e.ID}, HeaderEventID: {e.ID}, HeaderEventType: {e.Type}},
		}
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			pubErr = err
			break
		}
		futures = append(futures, f)
	}
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return i, p.failed(fmt.Errorf("event %s: %w", batch[i].ID, err))
		case <-ctx.Done():
			return i, fmt.Errorf("waiting for acks: %w", context.Cause(ctx))
		}
	}
	if pubErr != nil {
		if errors.Is(pubErr, nats.ErrMaxPayload) && len(futures) < len(batch) {
			return len(futures), Permanent(fmt.Errorf("event %s: %w", batch[len(futures)].ID, pubErr))
		}
		return len(futures), p.failed(fmt.Errorf("publish: %w", pubErr))
	}
	return len(futures), nil
}

// failed classifies a publish error and forgets the stream when it may be
// gone, so that it is looked up (or created) again on the next attempt.
func (p *JetStreamPublisher) failed(err error) error {
	switch {
	case errors.Is(err, nats.ErrDisconnected), errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, nats.ErrReconnectBufExceeded), errors.Is(err, nats.ErrConnectionReconnecting):
		return fmt.Errorf("%w: %w", ErrDisconnected, err)
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, jetstream.ErrStreamNotFound),
		errors.Is(err, nats.ErrNoResponders):
		p.mu.Lock()
		p.streamOK = false
		p.mu.Unlock()
	}
	return err
}

// ready returns the JetStream context once the stream exists.
func (p *JetStreamPublisher) ready(ctx context.Context, nc *nats.Conn) (jetstream.JetStream, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.js == nil {
		js, err := jetstream.New(nc,
			jetstream.WithPublishAsyncMaxPending(p.o.MaxPending),
			jetstream.WithPublishAsyncTimeout(p.o.AckTimeout))
		if err != nil {
			return nil, fmt.Errorf("jetstream: %w", err)
		}
		p.js = js
	}
	if p.streamOK {
		return p.js, nil
	}
	_, err := p.js.Stream(ctx, p.o.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		err = p.create(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", p.o.Stream, err)
	}
	p.streamOK = true
	return p.js, nil
}

// create creates the stream with the replicas asked for or, when none
// were, with three and then, if the cluster cannot hold three, one.
func (p *JetStreamPublisher) create(ctx context.Context) error {
	replicas := []int{p.o.Replicas}
	if p.o.Replicas <= 0 {
		replicas = []int{3, 1}
	}
	var err error
	for _, r := range replicas {
		_, err = p.js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        p.o.Stream,
			Description: "routr-go call and registration events",
			Subjects:    []string{p.o.Subject + ".>"},
			Storage:     jetstream.FileStorage,
			Replicas:    r,
			Duplicates:  p.o.DuplicateWindow,
			MaxAge:      p.o.MaxAge,
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil // another instance created it
		}
		if err == nil {
			p.c.log.Info("created events stream", "stream", p.o.Stream, "subjects", p.o.Subject+".>", "replicas", r)
			return nil
		}
	}
	return err
}

// Close closes the connection (after the queue in front was closed).
func (p *JetStreamPublisher) Close() { p.c.close() }

// Connected reports whether the connection is up.
func (p *JetStreamPublisher) Connected() bool { return p.c.connected() }
