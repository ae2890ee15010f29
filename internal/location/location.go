// Package location provides registrar bindings (address of record to
// contacts) with expiry, behind a Store interface, and an in-memory Store.
package location

import (
	"context"
	"errors"
	"time"
)

// Binding is one contact registered for an address of record. It holds
// plain strings only, so that a store shared between edge instances (NATS
// KV) can keep it as is.
type Binding struct {
	// AOR is the address of record, e.g. "sip:1001@sip.local", as the
	// registrar normalised it: the store compares AORs byte for byte.
	AOR string
	// Contact is the Contact URI as sent, e.g.
	// "sip:1001@10.0.0.5:5060;transport=udp"; also compared byte for byte.
	Contact string
	// Transport is "udp", "tcp", "tls", "ws" or "wss".
	Transport string
	// Source is the "ip:port" the REGISTER came from: contacts behind NAT
	// are reached there rather than at Contact.
	Source string
	// LocalAddr is our listener that received the REGISTER, so that
	// requests to the contact leave from it (and pass the NAT pinhole).
	LocalAddr string
	// CallID and CSeq order updates (RFC 3261 section 10.3 step 7).
	CallID string
	CSeq   uint32
	// Expires is when the binding lapses. Stores keep times to the
	// nanosecond and return them in UTC, without a monotonic reading.
	Expires time.Time
	// RegisteredAt is when it was last registered or refreshed; Put sets it
	// to now when zero. Lookup returns the most recent first.
	RegisteredAt time.Time
	// UserAgent is the User-Agent header, for operators.
	UserAgent string
	// SessionCount is the X-Session-Count the contact reported, for
	// least-sessions balancing.
	SessionCount int
	// Instance names the edge instance that holds the registration.
	Instance string
}

// PutResult says what a Put did.
type PutResult uint8

// Results of Put. The zero value means nothing happened (Put failed).
const (
	// Created means a new binding was stored.
	Created PutResult = iota + 1
	// Refreshed means an existing binding (same AOR and Contact) was
	// updated.
	Refreshed
	// Removed means the binding's Expires was not in the future (a
	// REGISTER with expires=0) and the existing binding was removed, after
	// the same Call-ID/CSeq check as an update.
	Removed
	// Absent means the binding's Expires was not in the future and there
	// was no such binding: nothing to do.
	Absent
)

// String returns the result in lower case, for logs.
func (r PutResult) String() string {
	switch r {
	case Created:
		return "created"
	case Refreshed:
		return "refreshed"
	case Removed:
		return "removed"
	case Absent:
		return "absent"
	default:
		return "none"
	}
}

// Errors of Put.
var (
	// ErrOutOfOrder refuses an update whose CSeq is not higher than the
	// stored one for the same Call-ID: it is older than what we hold
	// (RFC 3261 section 10.3 step 7). The registrar answers 500.
	ErrOutOfOrder = errors.New("location: CSeq out of order for this Call-ID")
	// ErrFull refuses a new binding beyond the store's bound; refreshes and
	// removals still work. The registrar answers 503 with Retry-After.
	ErrFull = errors.New("location: too many bindings")
	// ErrInvalid refuses a binding without AOR or Contact (or, absurdly,
	// with more than 4 GiB of strings).
	ErrInvalid = errors.New("location: binding needs an AOR and a Contact")
)

// Store keeps bindings. Implementations are safe for concurrent use; ctx
// bounds the work of stores that do I/O.
type Store interface {
	// Put inserts or updates the binding keyed by (AOR, Contact). An update
	// with the same Call-ID and a CSeq not above the stored one fails with
	// ErrOutOfOrder. A binding whose Expires is not after now removes the
	// stored one (Removed) or does nothing (Absent).
	Put(ctx context.Context, b Binding) (PutResult, error)
	// Remove deletes the binding (aor, contact) and reports whether an
	// unexpired one existed.
	Remove(ctx context.Context, aor, contact string) (bool, error)
	// RemoveAll deletes every binding of aor and returns how many unexpired
	// ones it removed.
	RemoveAll(ctx context.Context, aor string) (int, error)
	// Lookup returns the unexpired bindings of aor, most recently
	// registered first; none is not an error.
	Lookup(ctx context.Context, aor string) ([]Binding, error)
	// Count returns the number of unexpired bindings of aor.
	Count(ctx context.Context, aor string) (int, error)
}
