package location

import (
	"context"
	"math"
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

// entry is one stored binding, in 96 bytes plus its strings: a Binding
// is 192 (eight string headers, two time.Time), and an edge holds one
// entry per registered contact.
type entry struct {
	// strs holds the binding's strings back to back, in the order of
	// strFields, in one allocation: strings sliced from a parsed SIP
	// message would otherwise keep the whole message alive.
	strs string
	// ends are where each string but the last ends in strs.
	ends     [numStrs - 1]uint32
	cseq     uint32
	hi       int32 // index in the shard heap
	exp      int64 // Expires in Unix nanoseconds: cheap heap comparisons
	reg      int64 // RegisteredAt in Unix nanoseconds
	sessions int   // SessionCount
	next     *entry
	rev      uint64 // revision in a shared store's bucket (JetStream copy only)
}

// numStrs is the number of string fields of a Binding; strFields lists
// them.
const numStrs = 8

func strFields(b *Binding) [numStrs]*string {
	return [numStrs]*string{&b.AOR, &b.Contact, &b.Transport, &b.Source, &b.LocalAddr, &b.CallID, &b.UserAgent, &b.Instance}
}

// str returns the i-th string of strFields.
func (e *entry) str(i int) string {
	start := uint32(0)
	if i > 0 {
		start = e.ends[i-1]
	}
	end := uint32(len(e.strs))
	if i < numStrs-1 {
		end = e.ends[i]
	}
	return e.strs[start:end]
}

func (e *entry) aor() string     { return e.str(0) }
func (e *entry) contact() string { return e.str(1) }
func (e *entry) callID() string  { return e.str(5) }

// binding returns the stored binding; its strings share the entry's, and
// its times are in UTC without a monotonic reading, as a shared store
// returns them.
func (e *entry) binding() Binding {
	b := Binding{
		CSeq:         e.cseq,
		Expires:      time.Unix(0, e.exp).UTC(),
		RegisteredAt: time.Unix(0, e.reg).UTC(),
		SessionCount: e.sessions,
	}
	for i, f := range strFields(&b) {
		*f = e.str(i)
	}
	return b
}

// fitsEntry reports whether b's strings fit the offsets of an entry (4
// GiB: any SIP message does).
func fitsEntry(b *Binding) bool {
	n := 0
	for _, f := range strFields(b) {
		n += len(*f)
	}
	return uint64(n) <= math.MaxUint32
}

// store makes e hold b, whose strings fit (fitsEntry). Its strings are copied into one new allocation,
// unless they are the ones e holds already (a refresh, usually).
func (e *entry) store(b *Binding) {
	e.cseq, e.exp, e.reg, e.sessions = b.CSeq, b.Expires.UnixNano(), b.RegisteredAt.UnixNano(), b.SessionCount
	fields := strFields(b)
	same, n := e.strs != "", 0
	for i, f := range fields {
		n += len(*f)
		same = same && *f == e.str(i)
	}
	if same {
		return
	}
	var sb strings.Builder
	sb.Grow(n)
	for i, f := range fields {
		sb.WriteString(*f)
		if i < numStrs-1 {
			e.ends[i] = uint32(sb.Len())
		}
	}
	e.strs = sb.String()
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
	if b.AOR == "" || b.Contact == "" || !fitsEntry(&b) {
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
		if x.contact() == b.Contact {
			e = x
			break
		}
	}
	if e != nil && e.callID() == b.CallID && b.CSeq <= e.cseq {
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
		s.replace(e, b)
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
	e = &entry{}
	e.store(b)
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
		if x.contact() == contact {
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
			out = append(out, x.binding())
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
				buf = append(buf, e.binding())
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
			expired = append(expired, x.binding())
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

// replace makes the stored e hold b, an update of the same AOR and
// Contact, and moves it in the heap and in its AOR's list.
func (s *shard) replace(e *entry, b *Binding) {
	reg, strs := e.reg, e.strs
	e.store(b)
	s.heapFix(e)
	if e.reg != reg || e.strs != strs {
		// The list's order changed, or the AOR the map's key was sliced
		// from did: relink, which stores the key again.
		s.unlink(e)
		s.link(e)
	}
}

// link inserts e into its AOR's list, keeping the most recently registered
// first (a new entry goes before older ones with the same time).
func (s *shard) link(e *entry) {
	aor := e.aor()
	head := s.aors[aor]
	if head == nil || e.reg >= head.reg {
		e.next = head
		s.aors[aor] = e
		return
	}
	p := head
	for p.next != nil && e.reg < p.next.reg {
		p = p.next
	}
	e.next, p.next = p.next, e
}

// unlink removes e from its AOR's list, and the AOR when it was the last.
func (s *shard) unlink(e *entry) {
	aor := e.aor()
	head := s.aors[aor]
	if head == e {
		if e.next == nil {
			delete(s.aors, aor)
		} else {
			s.aors[aor] = e.next
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
