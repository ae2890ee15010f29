// Package edge provides the SIP server: listeners, the request handler chain,
// the registrar and the stateful, record-routing proxy, built on sipgo.
package edge

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/routr-go/routr/internal/auth"
	"github.com/routr-go/routr/internal/calls"
	"github.com/routr-go/routr/internal/connect"
	"github.com/routr-go/routr/internal/events"
	"github.com/routr-go/routr/internal/location"
	"github.com/routr-go/routr/internal/resources"
)

// Listener is one socket the edge serves SIP on.
type Listener struct {
	// Protocol is udp, tcp, tls, ws or wss.
	Protocol string
	// Addr is host:port to bind; port 0 picks a free port (tests).
	Addr string
	// TLS is the server configuration of a tls or wss listener (see
	// LoadTLS); required by those two, ignored by the others.
	TLS *tls.Config
}

// RegistrarOptions bound the expiry a registrar grants.
type RegistrarOptions struct {
	MinExpires     time.Duration
	MaxExpires     time.Duration
	DefaultExpires time.Duration
}

// Options configure a Server. Resources, Auth, Location and Calls are
// required; Events may be nil (no registration events).
type Options struct {
	Listeners     []Listener
	ExternalAddrs []string
	Localnets     []netip.Prefix
	Registrar     RegistrarOptions
	Resources     *resources.Holder
	Auth          *auth.Digest
	Location      location.Store
	Calls         *calls.Tracker
	Events        events.Sink
	Logger        *slog.Logger
	Registerer    prometheus.Registerer
	// UserAgent is written in the Server header of the edge's own responses.
	UserAgent string
	// RouteSecret keys the token the edge puts in its Record-Route so that
	// only dialogs it established are routed without authentication. Edges
	// that share dialogs must share it; empty means random per process.
	RouteSecret []byte
	// Connections bound the edge's TCP, TLS, WS and WSS connections; zero
	// values take the defaults described there.
	Connections ConnLimits
	// EnforceE164 rewrites numbers in the Request-URI, From and To of
	// out-of-dialog requests as E.164 before routing (ENFORCE_E164);
	// with EnforceE164MobilePrefix, mobile numbers only.
	EnforceE164             bool
	EnforceE164MobilePrefix bool
	// ConnectVerifier checks X-Connect-Token headers of ephemeral
	// agents; nil means such requests are answered 500, as in Routr.
	ConnectVerifier *connect.Verifier
	// Guard drops scanners, rate-limits and bans sources, and caps
	// failed authentications; zero values take its defaults.
	Guard GuardOptions
	// Limits bound message sizes and transactions; zero values take
	// the defaults described there.
	Limits Limits
	// Cluster lets instances sharing Location hand each other requests
	// (see ClusterOptions); zero for a single instance.
	Cluster ClusterOptions
	// UDPSockets is how many sockets serve each UDP listener (SO_REUSEPORT
	// on Linux); 0 means one per GOMAXPROCS.
	UDPSockets int
	// ResponseCache bounds the final responses kept to answer
	// retransmissions; zero values take the defaults (see responseCache).
	ResponseCache ResponseCacheLimits
}

// ResponseCacheLimits bound the final-response cache.
type ResponseCacheLimits struct {
	MaxEntries int
	MaxBytes   int
}

// Server is a running SIP edge.
type Server struct {
	opts    Options
	log     *slog.Logger
	ua      *sipgo.UserAgent
	srv     *sipgo.Server
	client  *sipgo.Client
	metrics *metrics
	addrs   *advertiser
	chain   Handler
	rr      routeToken
	acks    *ackGate
	conns   *connTracker
	guard   *guard
	limits  *limits
	drain   drainState
	// respCache answers retransmitted non-INVITE requests over UDP.
	respCache *responseCache
	// turns counts calls balanced over each peer AOR and trunk
	// (round-robin); see nextTurn.
	turns sync.Map

	mu    sync.Mutex
	bound []boundListener
	ready chan struct{}
}

type boundListener struct {
	protocol string
	addr     netip.AddrPort
}

// New builds a Server; Run starts it.
func New(o Options) (*Server, error) {
	if o.Resources == nil || o.Auth == nil || o.Location == nil || o.Calls == nil {
		return nil, errors.New("edge: Resources, Auth, Location and Calls are required")
	}
	if len(o.Listeners) == 0 {
		return nil, errors.New("edge: no listeners")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if o.UserAgent == "" {
		o.UserAgent = "routr-go"
	}
	if o.Registrar.DefaultExpires == 0 {
		o.Registrar.DefaultExpires = time.Hour
	}
	if o.Registrar.MaxExpires == 0 {
		o.Registrar.MaxExpires = time.Hour
	}
	if len(o.RouteSecret) == 0 {
		o.RouteSecret = make([]byte, 32)
		if _, err := rand.Read(o.RouteSecret); err != nil {
			return nil, fmt.Errorf("edge: route secret: %w", err)
		}
	}
	o.Connections = o.Connections.withDefaults(o.Registrar.MaxExpires)
	o.Limits = o.Limits.withDefaults()
	lim, err := newLimits(o.Limits, o.UserAgent, o.Logger, o.Registerer)
	if err != nil {
		return nil, err
	}
	sipLog := demoteConnNoise(quietSIPLogger(o.Logger))
	drop := &earlyDrop{} // its guard is set below
	var s *Server        // set below, before anything is served
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent(o.UserAgent),
		sipgo.WithUserAgentParser(lim.parser()),
		sipgo.WithUserAgentDNSResolver(sipResolver()), // dnsgate.go
		sipgo.WithUserAgentTransportLayerOptions(
			sip.WithTransportLayerLogger(sipLog),
			// sipgo keeps one read filter, copied into the transports
			// as they are set: it goes before them, and any other
			// filter joins the chain.
			sip.WithTransportLayerReadFilter(chainReadFilters(drop.filter, lim.readFilter)),
			sip.WithTransportLayerTransports(o.Connections.transports()),
		),
		sipgo.WithUserAgentTransactionLayerOptions(
			sip.WithTransactionLayerLogger(sipLog),
			// A transaction on a connection that closed can never
			// complete: end it now rather than after Timer B or F.
			sip.WithTransactionLayerTerminateOnConnClose(),
			// A 2xx retransmitted after the INVITE's transactions
			// ended at its ACK is relayed statelessly (stray.go).
			sip.WithTransactionLayerUnhandledResponseHandler(func(res *sip.Response) { s.strayResponse(res) }),
		),
	)
	if err != nil {
		return nil, fmt.Errorf("edge: user agent: %w", err)
	}
	lim.bad.tl = ua.TransportLayer()
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(sipLog))
	if err != nil {
		return nil, fmt.Errorf("edge: server: %w", err)
	}
	client, err := sipgo.NewClient(ua, sipgo.WithClientLogger(sipLog))
	if err != nil {
		return nil, fmt.Errorf("edge: client: %w", err)
	}
	acks := newAckGate()
	m, err := newMetrics(o.Registerer, o.Location, acks)
	if err != nil {
		return nil, err
	}
	conns, err := newConnTracker(o.Connections, o.Registerer)
	if err != nil {
		return nil, err
	}
	g, err := newGuard(o.Guard, o.Logger, o.Registerer)
	if err != nil {
		return nil, fmt.Errorf("edge: register metrics: %w", err)
	}
	g.trusted = (&trustedSources{holder: o.Resources}).contains
	drop.guard.Store(g)
	// Timer J: how long a UDP non-INVITE transaction answers retransmissions.
	rc, err := newResponseCache(64*sip.T1, o.ResponseCache.MaxEntries, o.ResponseCache.MaxBytes, o.Registerer)
	if err != nil {
		return nil, fmt.Errorf("edge: register metrics: %w", err)
	}
	// Bindings over a connection that closed are not offered to routing.
	o.Location = flowFilter{Store: o.Location, conns: conns, self: o.Cluster.Self, handOver: len(o.Cluster.Secret) > 0, up: o.Cluster.Alive}
	s = &Server{
		opts:    o,
		log:     o.Logger,
		ua:      ua,
		srv:     srv,
		client:  client,
		metrics: m,
		addrs:   newAdvertiser(o.ExternalAddrs, o.Localnets),
		rr:      newRouteToken(o.RouteSecret),
		acks:    acks,
		conns:   conns,
		guard:   g,
		limits:  lim,
		ready:   make(chan struct{}),

		respCache: rc,
	}
	if b, ok := o.Events.(interface{ Backlogged() bool }); ok {
		lim.backlogged = b.Backlogged // events.Pipeline
	}
	s.chain = s.buildChain()
	if err := s.initCluster(); err != nil {
		return nil, err
	}
	srv.OnNoRoute(s.serve)
	return s, nil
}

// Run binds every listener and serves until ctx ends. Bind errors are
// returned before anything is served.
func (s *Server) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	type serveFn func() error
	var serves []serveFn
	var closers []func() error
	for _, l := range s.opts.Listeners {
		proto := strings.ToLower(l.Protocol)
		switch proto {
		case "udp":
			pcs, err := listenUDP(l.Addr, s.opts.UDPSockets)
			if err != nil {
				closeAll(closers)
				return fmt.Errorf("listen udp %s: %w", l.Addr, err)
			}
			s.addBound(proto, pcs[0].LocalAddr())
			for _, pc := range pcs {
				setUDPBuffers(pc)
				closers = append(closers, pc.Close)
				serves = append(serves, func() error { return s.serveUDP(pc) })
			}
		case "tcp", "tls", "ws", "wss":
			ln, err := s.listenStream(proto, l)
			if err != nil {
				closeAll(closers)
				return err
			}
			s.addBound(proto, ln.Addr())
			closers = append(closers, ln.Close)
			serves = append(serves, s.streamServer(proto, ln))
		default:
			closeAll(closers)
			return fmt.Errorf("listen %s: protocol %q not supported", l.Addr, l.Protocol)
		}
	}
	s.addrs.setListeners(s.boundListeners())
	close(s.ready)

	errc := make(chan error, len(serves))
	for _, fn := range serves {
		go func() { errc <- fn() }()
	}
	for _, b := range s.boundListeners() {
		s.log.Info("sip listener ready", "protocol", b.protocol, "addr", b.addr.String())
	}

	var first error
	select {
	case <-ctx.Done():
	case err := <-errc:
		if err != nil && !errors.Is(err, net.ErrClosed) {
			first = err
		}
	}
	closeAll(closers)
	// Each Serve returns once its socket is closed.
	for i := 0; i < len(serves)-boolInt(first != nil); i++ {
		<-errc
	}
	s.client.Close()
	s.ua.Close()
	s.finishHandlers() // shutdown.go
	return first
}

// Ready is closed once every listener is bound.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr returns the bound address of the first listener of protocol, after
// Ready. Tests use it with port 0 listeners.
func (s *Server) Addr(protocol string) netip.AddrPort {
	for _, b := range s.boundListeners() {
		if b.protocol == protocol {
			return b.addr
		}
	}
	return netip.AddrPort{}
}

// bound lists the bound listeners.
func (s *Server) boundListeners() []boundListener {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]boundListener(nil), s.bound...)
}

func (s *Server) addBound(protocol string, a net.Addr) {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return
	}
	s.mu.Lock()
	s.bound = append(s.bound, boundListener{protocol: protocol, addr: ap})
	s.mu.Unlock()
}

func closeAll(fns []func() error) {
	for _, f := range fns {
		_ = f()
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// setUDPBuffers asks for large socket buffers: at tens of thousands of
// messages per second the default buffer overflows in bursts (measured: ~8k/s
// with the default against ~24k/s with 4 MB).
func setUDPBuffers(pc net.PacketConn) {
	if uc, ok := pc.(*net.UDPConn); ok {
		_ = uc.SetReadBuffer(4 << 20)
		_ = uc.SetWriteBuffer(4 << 20)
	}
}

// serve is the entry of every request sipgo hands to the edge.
func (s *Server) serve(req *sip.Request, tx sip.ServerTransaction) {
	r := newRequest(req, tx)
	s.metrics.byMethod.inc(req.Method)
	s.metrics.inflight.Inc()
	defer s.metrics.inflight.Dec()
	// A retransmitted request must get the same answer, not be processed
	// again (a new 401 with a new nonce, or a late copy of a REGISTER
	// re-applied after a newer one): non-INVITE over UDP from the response
	// cache, INVITE from sipgo's transaction (SIP_TRANSACTION_LINGER).
	if s.answerFromCache(r) {
		return
	}
	s.chain.ServeSIP(r)
}

// reply answers r with a response the edge builds itself.
func (s *Server) reply(r *Request, code int, reason string, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(r.Request, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	res.AppendHeader(sip.NewHeader("Server", s.opts.UserAgent))
	s.respond(r, res)
}

func (s *Server) respond(r *Request, res *sip.Response) {
	s.metrics.byCode.inc(res.StatusCode)
	if r.Tx == nil {
		if err := s.srv.WriteResponse(res); err != nil {
			s.log.Debug("write response", "error", err, "status", res.StatusCode)
		}
		return
	}
	if s.sendFinalCached(r, res) {
		return
	}
	if err := r.Tx.Respond(res); err != nil {
		s.log.Debug("respond", "error", err, "status", res.StatusCode, "call_id", r.CallID())
	}
}

// SetTransactionLinger sets how long finished INVITE transactions stay to
// absorb retransmissions over UDP: RFC 3261 Timers D and L, 32 s by the
// RFC (and Timer J, which applies only to the non-INVITE responses the
// response cache cannot take, e.g. too large for UDP). sipgo keeps these
// timers process-wide, so this must be called once, before any Server
// runs. Kamailio holds finished transactions 5 s; at thousands of calls
// per second the RFC's 32 s is most of the heap.
//
// Timers M, K and I it sets to at most T1: what they wait for needs no
// transaction at a proxy. A 2xx retransmitted after the client INVITE
// transaction (Timer M) is relayed statelessly and a response
// retransmitted after a non-INVITE one (Timer K) dropped (strayResponse);
// an ACK retransmitted after the server INVITE transaction that answered
// non-2xx (Timer I) carries no Route of ours and is dropped. sipgo's
// Terminate does not stop these timers, so until they fire they hold the
// transaction, its request and its response: ~300 MB per 1,000 calls/s
// at 5 s.
func SetTransactionLinger(d time.Duration) {
	if d <= 0 {
		return
	}
	sip.Timer_D = d
	sip.Timer_J = d
	sip.Timer_L = d
	short := min(d, sip.T1)
	sip.Timer_M = short
	sip.Timer_K = short
	sip.Timer_I = short
}
