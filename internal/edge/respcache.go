package edge

import (
	"bytes"
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
// long cost ~1 GB at 10,000 REGISTER/s; an entry here is the serialized
// response, where it went and the transaction key.
//
// Bounds: at most maxEntries entries and maxBytes of responses. Entries
// expire in the order they were made (one TTL for all), so when full the
// oldest go first, before their Timer J: a retransmission of such a
// request, which only comes after the response was lost several times, is
// then processed again as a new request (what every request got before
// this cache). routr_sip_response_cache_evictions_total{reason="full"}
// counts them.
type responseCache struct {
	ttl        time.Duration
	maxEntries int
	maxBytes   int

	mu    sync.Mutex
	byKey map[string]*cachedResponse
	// fifo holds entries oldest first; head indexes the oldest.
	fifo  []*cachedResponse
	head  int
	bytes int

	hits      prometheus.Counter
	evictFull prometheus.Counter
	evictTTL  prometheus.Counter
}

type cachedResponse struct {
	key     string
	data    []byte
	dest    netip.AddrPort
	expires int64 // unix nanoseconds
}

// Default bounds of the response cache: at 20,000 final responses per
// second (10,000 challenged REGISTERs) 32 MiB hold the last ~3 s of them
// (~50 MB of heap with the map); at 2,000 REGISTER/s, all of Timer J.
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
		ttl:        ttl,
		maxEntries: maxEntries,
		maxBytes:   maxBytes,
		byKey:      make(map[string]*cachedResponse),
		hits: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "routr", Subsystem: "sip", Name: "response_cache_hits_total",
			Help: "Retransmitted non-INVITE requests answered from the final-response cache.",
		}),
	}
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
			Help: "Bytes of final responses kept to answer retransmissions.",
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
	return len(c.byKey), c.bytes
}

// put keeps data, the final response sent to dest for the transaction key.
// data must not be changed afterwards.
func (c *responseCache) put(key string, data []byte, dest netip.AddrPort, now time.Time) {
	if len(data) > c.maxBytes {
		return
	}
	e := &cachedResponse{key: key, data: data, dest: dest, expires: now.Add(c.ttl).UnixNano()}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked(now.UnixNano())
	if old, ok := c.byKey[key]; ok {
		// A second final response for one transaction is not sent by the
		// edge; keep the first, as the transaction would.
		_ = old
		return
	}
	for len(c.byKey) >= c.maxEntries || c.bytes+len(data) > c.maxBytes {
		if !c.popLocked() {
			break
		}
		c.evictFull.Inc()
	}
	c.byKey[key] = e
	c.fifo = append(c.fifo, e)
	c.bytes += len(data)
}

// get returns the response kept for key, if it has not expired.
func (c *responseCache) get(key string, now time.Time) (data []byte, dest netip.AddrPort, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[key]
	if !ok || e.expires <= now.UnixNano() {
		return nil, netip.AddrPort{}, false
	}
	c.hits.Inc()
	return e.data, e.dest, true
}

// expireLocked drops entries past their TTL; they are at the front.
func (c *responseCache) expireLocked(now int64) {
	for c.head < len(c.fifo) && c.fifo[c.head].expires <= now {
		c.popLocked()
		c.evictTTL.Inc()
	}
}

// popLocked removes the oldest entry.
func (c *responseCache) popLocked() bool {
	if c.head >= len(c.fifo) {
		return false
	}
	e := c.fifo[c.head]
	c.fifo[c.head] = nil
	c.head++
	delete(c.byKey, e.key)
	c.bytes -= len(e.data)
	// Reuse the slice's front once half of it is spent, so the queue's
	// memory follows the number of entries, not the total ever made.
	if c.head > 1024 && c.head*2 >= len(c.fifo) {
		n := copy(c.fifo, c.fifo[c.head:])
		clear(c.fifo[n:])
		c.fifo = c.fifo[:n]
		c.head = 0
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

// txWriter returns the UDP socket of tx's connection, or nil.
func txWriter(tx sip.ServerTransaction) packetWriter {
	c, ok := tx.(interface{ Connection() sip.Connection })
	if !ok {
		return nil
	}
	w, _ := c.Connection().(packetWriter)
	return w
}

// packetWriter is what a sipgo UDP connection offers to send bytes.
type packetWriter interface {
	WriteTo(b []byte, addr net.Addr) (int, error)
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
	data, dest, ok := s.respCache.get(key, time.Now())
	if !ok {
		return false
	}
	if w := txWriter(r.Tx); w != nil {
		if _, err := w.WriteTo(data, net.UDPAddrFromAddrPort(dest)); err != nil {
			s.log.Debug("resend cached response", "error", err, "call_id", r.CallID())
		}
	}
	r.Tx.Terminate()
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
	w := txWriter(r.Tx)
	if w == nil {
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
	data := bytes.Clone(buf.Bytes())
	respBufPool.Put(buf)
	// Kept before it is sent: a retransmission crossing the response then
	// finds it once the transaction is gone.
	s.respCache.put(key, data, dest, time.Now())
	if _, err := w.WriteTo(data, net.UDPAddrFromAddrPort(dest)); err != nil {
		s.log.Debug("respond", "error", err, "status", res.StatusCode, "call_id", r.CallID())
	}
	r.Tx.Terminate()
	return true
}
