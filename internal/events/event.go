package events

import (
	"time"

	"github.com/google/uuid"
)

// Event types: the subject of an event is "<base>.<type>".
const (
	// TypeCallStarted is published once per call when its initial INVITE is forwarded (compat).
	TypeCallStarted = "call.started"
	// TypeCallAnswered is published once per call when a 2xx to its initial INVITE is relayed (beyond).
	TypeCallAnswered = "call.answered"
	// TypeCallEnded is published once per call when it ends, after its call.started (compat).
	TypeCallEnded = "call.ended"
	// TypeEndpointRegistered is published when the registrar stores a binding (compat).
	TypeEndpointRegistered = "endpoint.registered"
	// TypeEndpointUnregistered is published when a binding is removed or expires (beyond).
	TypeEndpointUnregistered = "endpoint.unregistered"
)

// Types lists every event type this package builds, compat ones first.
func Types() []string {
	return []string{TypeCallStarted, TypeCallEnded, TypeEndpointRegistered, TypeCallAnswered, TypeEndpointUnregistered}
}

// Event is one event, encoded once at creation: publishers and retries send
// Body as it is and never re-encode it.
type Event struct {
	// ID is unique per event (a UUIDv7, so ids sort by creation time). It
	// travels in the Nats-Msg-Id and Routr-Event-Id headers, not in Body.
	ID string
	// Type is the event type, e.g. "call.started"; the subject suffix.
	Type string
	// Time is when the event happened (startTime, endTime, registeredAt...).
	Time time.Time
	// Body is the JSON payload, UTF-8, exactly as published.
	Body []byte
}

// Header is one SIP header as it was on the wire: Name keeps its case.
type Header struct {
	Name, Value string
}

// NewID returns a new unique event id: a UUIDv7 in its canonical text form.
func NewID() string {
	id, err := uuid.NewV7()
	if err != nil {
		// crypto/rand does not fail on supported platforms; a v4 still
		// gives a unique id if it ever does.
		return uuid.NewString()
	}
	return id.String()
}
