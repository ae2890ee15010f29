package events

import (
	"context"
	"errors"
)

// Sink receives events. Publish must never block or do I/O: it is called
// on the SIP path (and by calls.Tracker while it holds a lock). A Sink
// that cannot keep an event drops and counts it.
type Sink interface {
	Publish(Event)
}

// SinkFunc adapts a function to Sink; the function must not block.
type SinkFunc func(Event)

// Publish calls f(e).
func (f SinkFunc) Publish(e Event) { f(e) }

// Confirmer is a Sink that can tell when the events it accepted have left
// the process: the call ledger (internal/cluster) marks an event published
// only then, so that another instance publishes it if this one dies first.
type Confirmer interface {
	Sink
	// OnSent registers f, called with each run of events the server has
	// confirmed; f must not block. It reports false when no confirmation
	// will ever come (no NATS publisher), and then registers nothing.
	OnSent(f func([]Event)) bool
}

// Discard is a Sink that drops every event: publishing turned off.
type Discard struct{}

// Publish does nothing.
func (Discard) Publish(Event) {}

// Fanout is a Sink that publishes every event to each of its sinks, in
// order (e.g. the NATS queue and the console queue).
type Fanout []Sink

// Publish hands e to every sink.
func (f Fanout) Publish(e Event) {
	for _, s := range f {
		s.Publish(e)
	}
}

// Publisher sends events to the outside world; it may block (a network
// round trip, a reconnect). A Queue calls it from one goroutine, in order.
// Send returns nil only once e is delivered as far as the publisher can
// confirm (for NATS: the server has read it); on any other error the Queue
// sends e again later, unless the error is Permanent.
type Publisher interface {
	Send(ctx context.Context, e Event) error
}

// BatchPublisher is a Publisher that can confirm several events at once
// (one round trip for a batch), which a Queue prefers when available.
// SendBatch returns how many events at the head of batch are confirmed;
// when it returns a Permanent error, the event right after those is the
// one rejected.
type BatchPublisher interface {
	Publisher
	SendBatch(ctx context.Context, batch []Event) (confirmed int, err error)
}

// ErrDisconnected is returned (wrapped) by the NATS publishers when the
// connection is down and did not come back within the attempt's context:
// the Queue keeps the events and tries again at once.
var ErrDisconnected = errors.New("events: not connected to NATS")

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as final for the event being sent (retrying cannot
// help, e.g. it exceeds the server's max payload): the Queue drops that
// event, counts it as rejected and goes on with the next one.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}
