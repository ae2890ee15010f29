package events

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"time"
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

// NewID returns a new unique event id: a UUIDv7 (RFC 9562) in its
// canonical text form, so ids sort by time to the millisecond (the
// constructors use the event's time). Its
// 74 random bits come from the runtime's ChaCha8 generator, seeded by the
// OS: unique without the cost of a system call per event.
func NewID() string { return newID(time.Now()) }

// newID makes an id whose timestamp is at: the constructors pass the
// event's time, which saves reading the clock again.
func newID(at time.Time) string {
	if at.IsZero() {
		at = time.Now()
	}
	var u [16]byte
	ms := uint64(at.UnixMilli())
	hi, lo := rand.Uint64(), rand.Uint64()
	u[0], u[1], u[2], u[3], u[4], u[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	u[6], u[7] = 0x70|byte(hi>>8)&0x0f, byte(hi) // version 7, rand_a
	binary.BigEndian.PutUint64(u[8:], lo)
	u[8] = 0x80 | u[8]&0x3f // variant 10, rand_b
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:])
	return string(s[:])
}
