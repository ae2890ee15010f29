package edge

import (
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/routr-go/routr/internal/resources"
)

// DefaultScannerAgents are User-Agent substrings of well-known SIP
// scanners (sipvicious and its forks, sipcli, VaxSIPUserAgent, ...).
var DefaultScannerAgents = []string{
	"friendly-scanner", "sipvicious", "sipcli", "sip-scan", "sipscan",
	"vaxsipuseragent", "vaxipuseragent", "pplsip", "iwar", "sundayddr",
	"siparmyknife",
}

// GuardOptions configure the flood guard, the first link of the handler
// chain. Zero values take the defaults given per field.
type GuardOptions struct {
	// ScannerAgents are case-insensitive User-Agent substrings whose
	// requests are dropped without an answer. nil takes
	// DefaultScannerAgents; an empty, non-nil list disables the check.
	ScannerAgents []string
	// Rate is the requests per second one source IP may send on
	// average and Burst how many it may send at once; a source that goes
	// beyond is banned. Default 200/s with a burst of 1000; Rate < 0
	// disables the limit.
	Rate  float64
	Burst int
	// BanFor is how long a banned source is ignored, and the window in
	// which failed authentications are counted. Default 5 minutes.
	BanFor time.Duration
	// MaxAuthFailures is how many failed digest answers one source, or
	// one user, may give within BanFor: one more bans the source
	// (everything it sends is dropped) or the user (every answer for it
	// gets 403 unchecked). Default 20; < 0 disables.
	MaxAuthFailures int
	// MaxSources bounds the sources and users tracked; when full, a
	// random entry that is not banned makes room. Default 65536.
	MaxSources int
	// Exempt are networks the rate limit and the source bans never
	// apply to (a load balancer, an office); the scanner check still
	// does. Loopback is exempt unless LimitLoopback is set, and so are
	// the sources the resources trust: the allow lists of trunks' and
	// peers' ACLs (rules of /8 and wider are left out, or "allow
	// 0.0.0.0/0" would exempt everyone), peers' contactAddr and trunks'
	// outbound URIs given as IP addresses.
	Exempt        []netip.Prefix
	LimitLoopback bool
}

func (o GuardOptions) withDefaults() GuardOptions {
	if o.ScannerAgents == nil {
		o.ScannerAgents = DefaultScannerAgents
	}
	if o.Rate == 0 {
		o.Rate = 200
	}
	if o.Burst <= 0 {
		o.Burst = 1000
	}
	if o.BanFor <= 0 {
		o.BanFor = 5 * time.Minute
	}
	if o.MaxAuthFailures == 0 {
		o.MaxAuthFailures = 20
	}
	if o.MaxSources <= 0 {
		o.MaxSources = 65536
	}
	return o
}

// guard keeps per-source token buckets, bans and failure counts, in
// bounded maps.
type guard struct {
	opts   GuardOptions
	agents []string
	// trusted reports sources the resources trust; nil trusts none.
	trusted func(netip.Addr) bool
	log     *slog.Logger
	now     func() time.Time

	mu      sync.Mutex
	sources map[netip.Addr]*sourceState
	users   map[string]*failures

	dropped *prometheus.CounterVec
	bans    *prometheus.CounterVec
}

type sourceState struct {
	tokens      float64
	last        time.Time
	bannedUntil time.Time
	fails       failures
	scanLogged  bool
}

// failures counts failed authentications within a window.
type failures struct {
	n           int
	since       time.Time
	bannedUntil time.Time
}

func newGuard(o GuardOptions, log *slog.Logger, reg prometheus.Registerer) (*guard, error) {
	o = o.withDefaults()
	g := &guard{
		opts:    o,
		log:     log,
		now:     time.Now,
		sources: make(map[netip.Addr]*sourceState),
		users:   make(map[string]*failures),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "routr", Subsystem: "guard", Name: "dropped_total",
			Help: "Requests dropped without an answer: scanner, rate (the one that started a ban) or banned.",
		}, []string{"reason"}),
		bans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "routr", Subsystem: "guard", Name: "bans_total",
			Help: "Temporary bans: rate (source over the request rate), auth_source and auth_user (too many failed authentications).",
		}, []string{"kind"}),
	}
	for _, a := range o.ScannerAgents {
		if a = strings.ToLower(strings.TrimSpace(a)); a != "" {
			g.agents = append(g.agents, a)
		}
	}
	for _, c := range []prometheus.Collector{g.dropped, g.bans} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return g, nil
}

func (g *guard) exempt(a netip.Addr) bool {
	if a.IsLoopback() && !g.opts.LimitLoopback {
		return true
	}
	for _, p := range g.opts.Exempt {
		if p.Contains(a) {
			return true
		}
	}
	return g.trusted != nil && g.trusted(a)
}

func (g *guard) scanner(ua string) bool {
	if ua == "" || len(g.agents) == 0 {
		return false
	}
	for _, a := range g.agents {
		if containsFold(ua, a) {
			return true
		}
	}
	return false
}

// containsFold reports whether s contains the lower-case ASCII substr in
// any case, without allocating a lower-case copy of s.
func containsFold(s, substr string) bool {
	n := len(substr)
	if n == 0 {
		return true
	}
	for i := 0; i+n <= len(s); i++ {
		if lowerASCII(s[i]) == substr[0] && strings.EqualFold(s[i:i+n], substr) {
			return true
		}
	}
	return false
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// source returns the state of a, making room when the map is full.
// g.mu is held.
func (g *guard) source(a netip.Addr, now time.Time) *sourceState {
	if st := g.sources[a]; st != nil {
		return st
	}
	if len(g.sources) >= g.opts.MaxSources {
		evict(g.sources, func(s *sourceState) bool { return now.Before(s.bannedUntil) })
	}
	st := &sourceState{tokens: float64(g.opts.Burst), last: now}
	g.sources[a] = st
	return st
}

// evict deletes one entry of m that is not banned among the first few
// it looks at (map iteration order makes them random), or the first of
// them when all are banned: a full map of bans costs a bounded look, not
// a walk of the whole map for every new source.
func evict[K comparable, V any](m map[K]V, banned func(V) bool) {
	const look = 32
	var first K
	i := 0
	for k, v := range m {
		if !banned(v) {
			delete(m, k)
			return
		}
		if i == 0 {
			first = k
		}
		if i++; i == look {
			break
		}
	}
	if i > 0 {
		delete(m, first)
	}
}

// admit reports whether r may go on down the chain.
func (g *guard) admit(r *Request) bool {
	var ua string
	if h := firstHeader(r, "user-agent"); h != nil {
		ua = h.Value()
	}
	a := r.Src.Addr()
	// Scanner list, exemptions and trusted networks are read-only or
	// atomic: most requests (trusted peers, loopback) pass without the
	// lock every request would otherwise queue on.
	isScanner := g.scanner(ua)
	if !isScanner && g.exempt(a) {
		return true
	}
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if isScanner {
		st := g.source(a, now)
		if !st.scanLogged {
			st.scanLogged = true
			g.log.Warn("dropping requests from a SIP scanner", "source", a.String(), "user_agent", ua)
		}
		g.dropped.WithLabelValues("scanner").Inc()
		return false
	}
	st := g.source(a, now)
	if now.Before(st.bannedUntil) {
		g.dropped.WithLabelValues("banned").Inc()
		return false
	}
	if g.opts.Rate < 0 {
		return true
	}
	st.tokens += now.Sub(st.last).Seconds() * g.opts.Rate
	st.last = now
	if max := float64(g.opts.Burst); st.tokens > max {
		st.tokens = max
	}
	if st.tokens < 1 {
		st.bannedUntil = now.Add(g.opts.BanFor)
		st.tokens = float64(g.opts.Burst)
		g.bans.WithLabelValues("rate").Inc()
		g.dropped.WithLabelValues("rate").Inc()
		g.log.Warn("source banned: request rate exceeded", "source", a.String(), "rate", g.opts.Rate, "burst", g.opts.Burst, "for", g.opts.BanFor.String())
		return false
	}
	st.tokens--
	return true
}

// userBanned reports whether answers for user are refused for now.
func (g *guard) userBanned(user string) bool {
	if g.opts.MaxAuthFailures < 0 {
		return false
	}
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	f := g.users[user]
	return f != nil && now.Before(f.bannedUntil)
}

// authFailed counts a failed authentication of user from src and bans
// either once it is one too many.
func (g *guard) authFailed(src netip.Addr, user string) {
	if g.opts.MaxAuthFailures < 0 {
		return
	}
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.exempt(src) {
		st := g.source(src, now)
		if g.count(&st.fails, now) {
			st.bannedUntil = st.fails.bannedUntil
			g.bans.WithLabelValues("auth_source").Inc()
			g.log.Warn("source banned: too many failed authentications", "source", src.String(), "failures", g.opts.MaxAuthFailures+1, "for", g.opts.BanFor.String())
		}
	}
	f := g.users[user]
	if f == nil {
		if len(g.users) >= g.opts.MaxSources {
			evict(g.users, func(f *failures) bool { return now.Before(f.bannedUntil) })
		}
		f = &failures{}
		g.users[user] = f
	}
	if g.count(f, now) {
		g.bans.WithLabelValues("auth_user").Inc()
		g.log.Warn("user banned: too many failed authentications", "user", user, "failures", g.opts.MaxAuthFailures+1, "for", g.opts.BanFor.String())
	}
}

// count adds a failure to f and reports whether it starts a ban.
func (g *guard) count(f *failures, now time.Time) bool {
	if now.Sub(f.since) > g.opts.BanFor {
		f.n, f.since = 0, now
	}
	f.n++
	if f.n > g.opts.MaxAuthFailures && !now.Before(f.bannedUntil) {
		f.bannedUntil = now.Add(g.opts.BanFor)
		f.n, f.since = 0, now
		return true
	}
	return false
}

// guarded is the chain's first link: requests the guard refuses are
// dropped without an answer, and their transaction is let go at once.
func (s *Server) guarded(next Handler) Handler {
	return HandlerFunc(func(r *Request) {
		if !s.guard.admit(r) {
			if r.Tx != nil {
				r.Tx.Terminate()
			}
			return
		}
		next.ServeSIP(r)
	})
}

// trustedSources caches the networks the current resources trust,
// rebuilt when the resource set is swapped.
type trustedSources struct {
	holder *resources.Holder
	cache  atomic.Pointer[trustedNets]
}

type trustedNets struct {
	set  *resources.Set
	nets []netip.Prefix
}

func (t *trustedSources) contains(a netip.Addr) bool {
	set := t.holder.Load()
	c := t.cache.Load()
	if c == nil || c.set != set {
		c = &trustedNets{set: set, nets: trustedPrefixes(set)}
		t.cache.Store(c)
	}
	for _, p := range c.nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// trustedPrefixes lists the networks of trunks and peers in set.
func trustedPrefixes(set *resources.Set) []netip.Prefix {
	var out []netip.Prefix
	acl := func(a *resources.AccessControlList) {
		if a == nil {
			return
		}
		for _, p := range a.AllowNets() {
			if p.Bits() > 8 {
				out = append(out, p)
			}
		}
	}
	host := func(h string) {
		if ap, err := netip.ParseAddrPort(h); err == nil {
			h = ap.Addr().String()
		}
		if a, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		}
	}
	for _, r := range set.All() {
		switch x := r.(type) {
		case *resources.Peer:
			acl(x.ACL)
			host(x.ContactAddr)
		case *resources.Trunk:
			acl(x.ACL)
			for _, u := range x.URIs {
				host(u.Host)
			}
		}
	}
	return out
}
