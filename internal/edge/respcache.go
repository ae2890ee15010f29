package edge

import (
	"bytes"
	"hash/maphash"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
)

// Final responses to non-INVITE requests over UDP are kept as bytes, not
// as transactions: RFC 3261 17.2.2 has the Completed server transaction
// answer every retransmission of the request with the same final response
// for Timer J (64*T1 over UDP, 0 over reliable transports). Keeping
// sipgo's whole transaction (request, response, timers, channels) for that
// long cost ~1 GB at 10,000 REGISTER/s.
//
// The cache is two rings allocated once: an arena of bytes holding each
// entry's transaction key and response back to back, and a ring of slots
// (hash, offset, lengths, expiry, destination), indexed by a map from key
// hash to slot. None of them holds a pointer, so the garbage collector
// neither scans them nor sees an allocation per response.
//
// Bounds: at most maxEntries entries and maxBytes of keys and responses.
// Entries expire in the order they were made (one TTL for all), so when
// full the oldest go first, before their Timer J: a retransmission of such
// a request, which only comes after the response was lost several times,
// is then processed again as a new request (what every request got before
// this cache). routr_sip_response_cache_evictions_total{reason="full"}
// counts them.
type responseCache struct {
	ttl  time.Duration
	seed maphash.Seed

	mu    sync.Mutex
	arena []byte
	// head and tail are byte positions since the start (arena index =
	// position mod len): live entries lie in [tail, head).
	head, tail int64
	slots      []cacheSlot
	// first and next are slot sequence numbers: live slots are
	// [first, next), slot i at slots[i mod len].
	first, next uint64
	index       map[uint64]uint64 // key hash -> slot sequence number

	hits      prometheus.Counter
	evictFull prometheus.Counter
	evictTTL  prometheus.Counter
}

type cacheSlot struct {
	hash       uint64
	pos        int64 // byte position of the key; the response follows
	klen, dlen int32
	expires    int64 // unix nanoseconds
	addr       [16]byte
	port       uint16
	is4        bool
}

// Default bounds of the response cache: at 20,000 final responses per
// second (10,000 challenged REGISTERs) 32 MiB hold the last ~3 s of them;
// at 2,000 REGISTER/s, all of Timer J.
const (
	defaultResponseCacheEntries = 1 << 16
	defaultResponseCacheBytes   = 32 << 20
)

func newResponseCache(ttl time.Duration, maxEntries, maxBytes int, reg prometheus.Registerer) (*responseCache, error) {
	if maxEntries <= 0 {
		maxEntries = defaultResponseCacheEntries
	}
	if maxBytes <= 0 {
		maxBytes = defaultResponseCacheBytes
	}
	c := &responseCache{
		ttl:   ttl,
		seed:  maphash.MakeSeed(),
		slots: make([]cacheSlot, maxEntries),
		index: make(map[uint64]uint64),
		hits: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "routr", Subsystem: "sip", Name: "response_cache_hits_total",
			Help: "Retransmitted non-INVITE requests answered from the final-response cache.",
		}),
	}
	// The arena must not be reachable from the cleanup that unmaps it:
	// it is owned by c and released once c is gone.
	c.arena = newArena(c, maxBytes)
	ev := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "routr", Subsystem: "sip", Name: "response_cache_evictions_total",
		Help: "Final responses dropped from the cache: expired (Timer J) or full (before Timer J).",
	}, []string{"reason"})
	c.evictFull = ev.WithLabelValues("full")
	c.evictTTL = ev.WithLabelValues("expired")
	cs := []prometheus.Collector{c.hits, ev,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "routr", Subsystem: "sip", Name: "response_cache_entries",
			Help: "Final responses kept to answer retransmissions.",
		}, func() float64 { n, _ := c.size(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "routr", Subsystem: "sip", Name: "response_cache_bytes",
			Help: "Bytes of keys and final responses kept to answer retransmissions.",
		}, func() float64 { _, b := c.size(); return float64(b) }),
	}
	for _, col := range cs {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *responseCache) size() (entries, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return int(c.next - c.first), int(c.head - c.tail)
}

// put keeps data, the final response sent to dest for the transaction
// key (both copied).
func (c *responseCache) put(key string, data []byte, dest netip.AddrPort, now time.Time) {
	need := int64(len(key) + len(data))
	if need > int64(len(c.arena)) {
		return
	}
	h := maphash.String(c.seed, key)
	c.mu.Lock()
	defer c.mu.Unlock()
	nowNano := now.UnixNano()
	c.expireLocked(nowNano)
	if seq, ok := c.index[h]; ok && c.matchLocked(seq, key) {
		// A second final response for one transaction is not sent by the
		// edge; keep the first, as the transaction would.
		return
	}
	for c.next-c.first >= uint64(len(c.slots)) || c.head+need-c.tail > int64(len(c.arena)) {
		if !c.popLocked() {
			break
		}
		c.evictFull.Inc()
	}
	s := cacheSlot{hash: h, pos: c.head, klen: int32(len(key)), dlen: int32(len(data)),
		expires: nowNano + int64(c.ttl), port: dest.Port()}
	a := dest.Addr()
	s.is4 = a.Is4()
	s.addr = a.As16()
	ringWrite(c.arena, c.head, key)
	ringWrite(c.arena, c.head+int64(len(key)), data)
	c.head += need
	c.slots[c.next%uint64(len(c.slots))] = s
	c.index[h] = c.next
	c.next++
}

// get appends the response kept for key to dst, if it has not expired.
func (c *responseCache) get(dst []byte, key string, now time.Time) (data []byte, dest netip.AddrPort, ok bool) {
	h := maphash.String(c.seed, key)
	c.mu.Lock()
	defer c.mu.Unlock()
	seq, ok := c.index[h]
	if !ok || !c.matchLocked(seq, key) {
		return dst, netip.AddrPort{}, false
	}
	s := &c.slots[seq%uint64(len(c.slots))]
	if s.expires <= now.UnixNano() {
		return dst, netip.AddrPort{}, false
	}
	dst = c.appendLocked(dst, s.pos+int64(s.klen), int(s.dlen))
	a := netip.AddrFrom16(s.addr)
	if s.is4 {
		a = a.Unmap()
	}
	c.hits.Inc()
	return dst, netip.AddrPortFrom(a, s.port), true
}

// matchLocked reports whether live slot seq holds key.
func (c *responseCache) matchLocked(seq uint64, key string) bool {
	if seq < c.first || seq >= c.next {
		return false
	}
	s := &c.slots[seq%uint64(len(c.slots))]
	if int(s.klen) != len(key) {
		return false
	}
	n := int64(len(c.arena))
	for i := 0; i < len(key); {
		p := (s.pos + int64(i)) % n
		chunk := min(len(key)-i, int(n-p))
		if string(c.arena[p:p+int64(chunk)]) != key[i:i+chunk] {
			return false
		}
		i += chunk
	}
	return true
}

// ringWrite copies b into arena at position pos, wrapping around.
func ringWrite[T string | []byte](arena []byte, pos int64, b T) {
	n := int64(len(arena))
	for len(b) > 0 {
		p := pos % n
		k := copy(arena[p:], b)
		b = b[k:]
		pos += int64(k)
	}
}

// appendLocked appends n bytes of the arena from position pos to dst.
func (c *responseCache) appendLocked(dst []byte, pos int64, n int) []byte {
	size := int64(len(c.arena))
	for n > 0 {
		p := pos % size
		k := min(int64(n), size-p)
		dst = append(dst, c.arena[p:p+k]...)
		n -= int(k)
		pos += k
	}
	return dst
}

// expireLocked drops entries past their TTL; they are at the front.
func (c *responseCache) expireLocked(now int64) {
	for c.first < c.next && c.slots[c.first%uint64(len(c.slots))].expires <= now {
		c.popLocked()
		c.evictTTL.Inc()
	}
}

// popLocked removes the oldest entry.
func (c *responseCache) popLocked() bool {
	if c.first >= c.next {
		return false
	}
	s := &c.slots[c.first%uint64(len(c.slots))]
	if seq, ok := c.index[s.hash]; ok && seq == c.first {
		delete(c.index, s.hash)
	}
	c.tail = s.pos + int64(s.klen) + int64(s.dlen)
	c.first++
	if c.first == c.next {
		c.head, c.tail = 0, 0 // empty: start again at the front
	}
	return true
}

// cacheable reports whether the final response to r belongs in the cache:
// non-INVITE (INVITE transactions are sipgo's, with their ACK handling),
// over UDP (reliable transports do not retransmit), with a transaction.
func cacheable(r *Request) bool {
	return r.Tx != nil && r.Method != sip.INVITE && r.Method != sip.ACK && r.Transport() == "udp"
}

// txKey is the RFC 3261 17.2.3 key of r's transaction (branch, sent-by,
// method), as sipgo computed it when it matched the request.
func txKey(tx sip.ServerTransaction) (string, bool) {
	k, ok := tx.(interface{ Key() string })
	if !ok {
		return "", false
	}
	return k.Key(), true
}

// txConn returns tx's connection when it is a UDP socket, or nil.
func txConn(tx sip.ServerTransaction) udpConn {
	c, ok := tx.(interface{ Connection() sip.Connection })
	if !ok {
		return nil
	}
	w, _ := c.Connection().(udpConn)
	return w
}

// udpConn is what a sipgo UDP connection offers to send bytes.
type udpConn interface {
	sip.Connection
	WriteTo(b []byte, addr net.Addr) (int, error)
}

// terminateAndSend ends tx, then sends data to dest on its socket. The
// order matters: a retransmission that arrives once data is out must
// find no transaction (sipgo would give it to the one in Trying, which
// ignores it) but the cache. The extra reference keeps a socket that is
// not a listener open until data is sent.
func (s *Server) terminateAndSend(tx sip.ServerTransaction, c udpConn, data []byte, dest netip.AddrPort, callID string) {
	c.Ref(1)
	tx.Terminate()
	if _, err := c.WriteTo(data, net.UDPAddrFromAddrPort(dest)); err != nil {
		s.log.Debug("send response", "error", err, "call_id", callID)
	}
	_, _ = c.TryClose()
}

// answerFromCache resends the cached final response when r retransmits a
// request already answered, and ends r's new transaction. It reports
// whether r was answered.
func (s *Server) answerFromCache(r *Request) bool {
	if s.respCache == nil || !cacheable(r) {
		return false
	}
	key, ok := txKey(r.Tx)
	if !ok {
		return false
	}
	buf := respBufPool.Get().(*bytes.Buffer)
	defer respBufPool.Put(buf)
	data, dest, ok := s.respCache.get(buf.AvailableBuffer(), key, time.Now())
	if !ok {
		return false
	}
	if c := txConn(r.Tx); c != nil {
		s.terminateAndSend(r.Tx, c, data, dest, r.CallID())
	} else {
		r.Tx.Terminate()
	}
	return true
}

var respBufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// sendFinalCached sends the final response res to r's UDP non-INVITE
// transaction itself, keeps its bytes for retransmissions and ends the
// transaction at once. It reports false when it did not send (the caller
// then responds through the transaction as usual).
func (s *Server) sendFinalCached(r *Request, res *sip.Response) bool {
	if s.respCache == nil || res.StatusCode < 200 || !cacheable(r) {
		return false
	}
	key, ok := txKey(r.Tx)
	if !ok {
		return false
	}
	c := txConn(r.Tx)
	if c == nil {
		return false
	}
	dest, err := netip.ParseAddrPort(res.Destination())
	if err != nil {
		dest = r.Src
	}
	buf := respBufPool.Get().(*bytes.Buffer)
	buf.Reset()
	res.StringWrite(buf)
	if buf.Len() > sip.UDPMTUSize-200 {
		// sipgo refuses it over UDP; let it say so.
		respBufPool.Put(buf)
		return false
	}
	data := buf.Bytes()
	// Kept before the transaction ends and the response is sent: a
	// retransmission then finds either the transaction or this.
	s.respCache.put(key, data, dest, time.Now())
	s.terminateAndSend(r.Tx, c, data, dest, r.CallID())
	respBufPool.Put(buf)
	return true
}
