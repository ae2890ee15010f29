package location

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultSweepInterval is used when MemoryOptions.SweepInterval is zero.
const DefaultSweepInterval = time.Second

const (
	numShards = 64 // a power of two; enough that 2-16 cores rarely collide
	// sweepBatch bounds how many expiries one lock hold handles, so a mass
	// expiry does not stall Puts to a shard.
	sweepBatch = 256
)

// MemoryOptions configures a [Memory] store.
type MemoryOptions struct {
	// MaxBindings bounds the number of bindings; zero means no bound. A Put
	// of a new binding beyond it fails with ErrFull. Expired bindings count
	// until they are swept (at most SweepInterval) or met by a Put or
	// Remove on their AOR.
	MaxBindings int
	// SweepInterval is how often Run removes expired bindings; zero means
	// DefaultSweepInterval. Lookups never return expired bindings whatever
	// the interval: it only bounds how late OnExpire fires and how long an
	// expired binding holds memory.
	SweepInterval time.Duration
	// OnExpire, if set, is called once for every binding that expires
	// without being removed or replaced, outside any lock. It runs in the
	// sweeper goroutine, or in the goroutine of a Put or Remove that meets
	// the expired binding first, so it must be safe for concurrent use and
	// quick (hand the event to a queue).
	OnExpire func(Binding)
	// Now returns the current time; nil means time.Now. Tests inject it.
	Now func() time.Time
}

// Memory is an in-memory [Store]. Bindings live in 64 shards chosen by a
// hash of the AOR, each with its own lock, map of AOR to a short list of
// contacts, and min-heap of expiry times, so that Puts from many goroutines
// rarely contend and the sweeper only looks at what has expired: no scan of
// all bindings, no goroutine or timer per binding.
//
// Put copies the binding's strings into one allocation: strings sliced from
// a parsed SIP message would otherwise keep the whole message alive.
//
// Create it with NewMemory and start Run.
type Memory struct {
	opts   MemoryOptions
	now    func() time.Time
	count  atomic.Int64
	shards [numShards]shard
}

type shard struct {
	mu   sync.RWMutex
	aors map[string]*entry // list of contacts, most recently registered first
	heap []*entry          // min-heap on entry.exp
	_    [64]byte          // keep neighbouring shards' locks off one cache line
}

// entry is one stored binding.
type entry struct {
	b    Binding
	exp  int64 // b.Expires in Unix nanoseconds: cheap heap comparisons
	next *entry
	hi   int32  // index in the shard heap
	rev  uint64 // revision in a shared store's bucket (JetStream copy only)
}

// NewMemory returns an empty store; call Run to expire bindings.
func NewMemory(opts MemoryOptions) *Memory {
	m := &Memory{opts: opts, now: opts.Now}
	if m.now == nil {
		m.now = time.Now
	}
	if m.opts.SweepInterval <= 0 {
		m.opts.SweepInterval = DefaultSweepInterval
	}
	for i := range m.shards {
		m.shards[i].aors = make(map[string]*entry)
	}
	return m
}

var _ Store = (*Memory)(nil)

// Len returns the number of bindings held, including expired ones the
// sweeper has not removed yet, for a gauge.
func (m *Memory) Len() int { return int(m.count.Load()) }

func (m *Memory) shard(aor string) *shard {
	// FNV-1a, inline so that it does not allocate.
	h := uint32(2166136261)
	for i := 0; i < len(aor); i++ {
		h ^= uint32(aor[i])
		h *= 16777619
	}
	return &m.shards[h%numShards]
}

// Put implements [Store].
func (m *Memory) Put(_ context.Context, b Binding) (PutResult, error) {
	if b.AOR == "" || b.Contact == "" {
		return 0, ErrInvalid
	}
	now := m.now()
	if b.RegisteredAt.IsZero() {
		b.RegisteredAt = now
	}
	nowNano := now.UnixNano()
	s := m.shard(b.AOR)
	s.mu.Lock()
	expired := m.purgeLocked(s, b.AOR, nowNano)
	res, err := m.putLocked(s, &b, now, nowNano)
	s.mu.Unlock()
	m.report(expired)
	return res, err
}

func (m *Memory) putLocked(s *shard, b *Binding, now time.Time, nowNano int64) (PutResult, error) {
	var e *entry
	for x := s.aors[b.AOR]; x != nil; x = x.next {
		if x.b.Contact == b.Contact {
			e = x
			break
		}
	}
	if e != nil && e.b.CallID == b.CallID && b.CSeq <= e.b.CSeq {
		return 0, ErrOutOfOrder
	}
	if !b.Expires.After(now) {
		if e == nil {
			return Absent, nil
		}
		s.unlink(e)
		s.heapRemove(e)
		m.count.Add(-1)
		return Removed, nil
	}
	if e != nil {
		old := e.b
		e.b = *b
		reuseStrings(&e.b, &old)
		e.exp = b.Expires.UnixNano()
		s.heapFix(e)
		if !e.b.RegisteredAt.Equal(old.RegisteredAt) {
			s.unlink(e)
			s.link(e)
		}
		return Refreshed, nil
	}
	if max := int64(m.opts.MaxBindings); max > 0 {
		if m.count.Add(1) > max {
			m.count.Add(-1)
			return 0, ErrFull
		}
	} else {
		m.count.Add(1)
	}
	e = &entry{b: *b, exp: b.Expires.UnixNano()}
	packStrings(&e.b)
	s.link(e)
	s.heapPush(e)
	return Created, nil
}

// Remove implements [Store].
func (m *Memory) Remove(_ context.Context, aor, contact string) (bool, error) {
	nowNano := m.now().UnixNano()
	s := m.shard(aor)
	s.mu.Lock()
	expired := m.purgeLocked(s, aor, nowNano)
	found := false
	for x := s.aors[aor]; x != nil; x = x.next {
		if x.b.Contact == contact {
			s.unlink(x)
			s.heapRemove(x)
			m.count.Add(-1)
			found = true
			break
		}
	}
	s.mu.Unlock()
	m.report(expired)
	return found, nil
}

// RemoveAll implements [Store].
func (m *Memory) RemoveAll(_ context.Context, aor string) (int, error) {
	nowNano := m.now().UnixNano()
	s := m.shard(aor)
	s.mu.Lock()
	expired := m.purgeLocked(s, aor, nowNano)
	n := 0
	for x := s.aors[aor]; x != nil; x = x.next {
		s.heapRemove(x)
		n++
	}
	delete(s.aors, aor)
	m.count.Add(int64(-n))
	s.mu.Unlock()
	m.report(expired)
	return n, nil
}

// Lookup implements [Store].
func (m *Memory) Lookup(_ context.Context, aor string) ([]Binding, error) {
	nowNano := m.now().UnixNano()
	s := m.shard(aor)
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for x := s.aors[aor]; x != nil; x = x.next {
		if x.exp > nowNano {
			n++
		}
	}
	if n == 0 {
		return nil, nil
	}
	out := make([]Binding, 0, n)
	for x := s.aors[aor]; x != nil; x = x.next {
		if x.exp > nowNano {
			out = append(out, x.b)
		}
	}
	return out, nil
}

// Count implements [Store].
func (m *Memory) Count(_ context.Context, aor string) (int, error) {
	nowNano := m.now().UnixNano()
	s := m.shard(aor)
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for x := s.aors[aor]; x != nil; x = x.next {
		if x.exp > nowNano {
			n++
		}
	}
	return n, nil
}

// Run removes expired bindings every SweepInterval, calling OnExpire for
// each, until ctx ends.
func (m *Memory) Run(ctx context.Context) {
	t := time.NewTicker(m.opts.SweepInterval)
	defer t.Stop()
	var buf []Binding
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			buf = m.sweep(buf)
		}
	}
}

// sweep removes every binding expired by now, shard by shard, at most
// sweepBatch per lock hold, and reports them. buf is reused between sweeps.
func (m *Memory) sweep(buf []Binding) []Binding {
	nowNano := m.now().UnixNano()
	for i := range m.shards {
		s := &m.shards[i]
		for {
			buf = buf[:0]
			s.mu.Lock()
			for len(s.heap) > 0 && s.heap[0].exp <= nowNano && len(buf) < sweepBatch {
				e := s.heap[0]
				s.heapRemove(e)
				s.unlink(e)
				buf = append(buf, e.b)
			}
			m.count.Add(int64(-len(buf)))
			s.mu.Unlock()
			m.report(buf)
			clear(buf) // drop references to the bindings' strings
			if len(buf) < sweepBatch {
				break
			}
		}
	}
	return buf[:0]
}

// purgeLocked removes the expired bindings of one AOR and returns them, so
// that an operation meeting them first reports them exactly once.
func (m *Memory) purgeLocked(s *shard, aor string, nowNano int64) []Binding {
	var expired []Binding
	for x := s.aors[aor]; x != nil; {
		next := x.next
		if x.exp <= nowNano {
			s.unlink(x)
			s.heapRemove(x)
			m.count.Add(-1)
			expired = append(expired, x.b)
		}
		x = next
	}
	return expired
}

func (m *Memory) report(expired []Binding) {
	if m.opts.OnExpire == nil {
		return
	}
	for _, b := range expired {
		m.opts.OnExpire(b)
	}
}

// link inserts e into its AOR's list, keeping the most recently registered
// first (a new entry goes before older ones with the same time).
func (s *shard) link(e *entry) {
	head := s.aors[e.b.AOR]
	if head == nil || !e.b.RegisteredAt.Before(head.b.RegisteredAt) {
		e.next = head
		s.aors[e.b.AOR] = e
		return
	}
	p := head
	for p.next != nil && e.b.RegisteredAt.Before(p.next.b.RegisteredAt) {
		p = p.next
	}
	e.next, p.next = p.next, e
}

// unlink removes e from its AOR's list, and the AOR when it was the last.
func (s *shard) unlink(e *entry) {
	head := s.aors[e.b.AOR]
	if head == e {
		if e.next == nil {
			delete(s.aors, e.b.AOR)
		} else {
			s.aors[e.b.AOR] = e.next
		}
		e.next = nil
		return
	}
	for p := head; p != nil; p = p.next {
		if p.next == e {
			p.next = e.next
			e.next = nil
			return
		}
	}
}

// packStrings copies the binding's strings into one allocation, so that it
// neither shares memory with the caller's message nor costs an allocation
// per field.
func packStrings(b *Binding) {
	fields := [...]*string{&b.AOR, &b.Contact, &b.Transport, &b.Source, &b.LocalAddr, &b.CallID, &b.UserAgent, &b.Instance}
	n := 0
	for _, f := range fields {
		n += len(*f)
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, f := range fields {
		sb.WriteString(*f)
	}
	all := sb.String()
	off := 0
	for _, f := range fields {
		l := len(*f)
		*f = all[off : off+l]
		off += l
	}
}

// reuseStrings keeps the stored copies of the strings a refresh did not
// change (usually all of them), and copies the others.
func reuseStrings(b, old *Binding) {
	fields := [...]*string{&b.AOR, &b.Contact, &b.Transport, &b.Source, &b.LocalAddr, &b.CallID, &b.UserAgent, &b.Instance}
	olds := [...]string{old.AOR, old.Contact, old.Transport, old.Source, old.LocalAddr, old.CallID, old.UserAgent, old.Instance}
	for i, f := range fields {
		if *f == olds[i] {
			*f = olds[i]
		} else {
			*f = strings.Clone(*f)
		}
	}
}
