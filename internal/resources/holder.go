package resources

import "sync/atomic"

// Holder holds the current *Set so that it can be replaced at run time
// (by an API, or a reload) while requests read it. The zero Holder holds
// nil, which every Set lookup treats as empty.
type Holder struct {
	p atomic.Pointer[Set]
}

// NewHolder returns a Holder holding s.
func NewHolder(s *Set) *Holder {
	h := &Holder{}
	h.p.Store(s)
	return h
}

// Load returns the current Set. Callers should load once per request and
// use that Set throughout, so that a request sees one consistent snapshot.
func (h *Holder) Load() *Set { return h.p.Load() }

// Store makes s the current Set.
func (h *Holder) Store(s *Set) { h.p.Store(s) }
