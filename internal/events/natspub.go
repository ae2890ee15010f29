package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// NATSOptions configures a NATSPublisher.
type NATSOptions struct {
	ConnOptions
	// Subject is the base subject (NATS_PUBLISHER_SUBJECT); events go to
	// "<Subject>.<type>". Empty means DefaultSubject.
	Subject string
	// FlushTimeout bounds the round trip that confirms a batch; default 5s.
	FlushTimeout time.Duration
}

// NATSPublisher publishes events with core NATS (what Routr does), each
// message carrying the Nats-Msg-Id, Routr-Event-Id and Routr-Event-Type
// headers. It confirms a batch with one PING/PONG round trip (a flush) on
// the connection the batch was written to: the server has then read every
// message of it. Put it behind a Queue.
type NATSPublisher struct {
	c            *conn
	subjects     subjects
	flushTimeout time.Duration
}

// NewNATSPublisher starts connecting to NATS in the background and returns
// at once, even when NATS is unreachable; nats.go reconnects forever. It
// fails only on invalid settings.
func NewNATSPublisher(o NATSOptions) (*NATSPublisher, error) {
	if o.Subject == "" {
		o.Subject = DefaultSubject
	}
	if err := ValidateSubject(o.Subject); err != nil {
		return nil, err
	}
	if o.FlushTimeout <= 0 {
		o.FlushTimeout = 5 * time.Second
	}
	c, err := dial(o.ConnOptions)
	if err != nil {
		return nil, err
	}
	return &NATSPublisher{c: c, subjects: newSubjects(o.Subject), flushTimeout: o.FlushTimeout}, nil
}

// Send publishes one event and waits for the server to confirm it.
func (p *NATSPublisher) Send(ctx context.Context, e Event) error {
	n, err := p.SendBatch(ctx, []Event{e})
	if n == 1 {
		return nil
	}
	return err
}

// SendBatch waits for the connection, publishes the batch in order and
// confirms it with one flush. When the connection drops meanwhile nothing
// is confirmed, and the queue sends the batch again after the reconnect:
// the messages the server had read before the drop are then duplicates
// (same event id), the others arrive for the first time.
func (p *NATSPublisher) SendBatch(ctx context.Context, batch []Event) (int, error) {
	nc, err := p.c.wait(ctx)
	if err != nil {
		return 0, err
	}
	reconnects := nc.Stats().Reconnects

	msgID, eventID, eventType := []string{""}, []string{""}, []string{""}
	msg := nats.Msg{Header: nats.Header{HeaderMsgID: msgID, HeaderEventID: eventID, HeaderEventType: eventType}}
	written := 0
	var rejected error
	for i := range batch {
		e := &batch[i]
		msg.Subject, msg.Data = p.subjects.of(e.Type), e.Body
		msgID[0], eventID[0], eventType[0] = e.ID, e.ID, e.Type
		if err := nc.PublishMsg(&msg); err != nil {
			if errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, nats.ErrBadSubject) {
				rejected = Permanent(fmt.Errorf("event %s (%s): %w", e.ID, e.Type, err))
				break
			}
			return 0, fmt.Errorf("%w: publish: %w", ErrDisconnected, err)
		}
		written++
	}
	if written > 0 {
		fctx, cancel := context.WithTimeout(ctx, p.flushTimeout)
		err := nc.FlushWithContext(fctx)
		cancel()
		if err != nil {
			return 0, fmt.Errorf("confirm %d events: %w", written, err)
		}
		// A flush answered on a new connection proves nothing about the
		// messages written to the old one.
		if nc.Stats().Reconnects != reconnects {
			return 0, fmt.Errorf("%w: reconnected while publishing", ErrDisconnected)
		}
	}
	return written, rejected
}

// Close closes the connection (after the queue in front was closed).
func (p *NATSPublisher) Close() { p.c.close() }

// Connected reports whether the connection is up.
func (p *NATSPublisher) Connected() bool { return p.c.connected() }
