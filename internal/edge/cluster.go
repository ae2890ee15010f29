package edge

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/routr-go/routr/internal/location"
)

// ClusterOptions let edge instances that share a location store hand each
// other the requests for callees only one of them can reach: an agent
// registered over TCP, TLS or WebSocket is reachable only over the
// connection it opened, to the instance it registered with.
//
// The instance that routes such a request (B) sends it to the instance
// holding the connection (A) with a Route header naming A and carrying a
// flow token: the connection's transport and address, an expiry and a
// nonce, signed with the shared Secret over the Call-ID. A delivers a
// request on a connection only with a valid token it has not seen before:
// no header a client can write reaches a connection without B having
// authenticated and routed the request first.
type ClusterOptions struct {
	// Self is the SIP URI where the other instances reach this one, e.g.
	// "sip:10.0.0.5:5060;transport=udp"; the registrar writes it into
	// every binding (Binding.Instance). Empty for a single instance.
	Self string
	// Secret signs flow tokens; every instance needs the same one. Empty
	// turns the hand-over off: connection-bound bindings of another
	// instance are then left out of routing, as closed connections are.
	Secret []byte
	// MaxTokens bounds the tokens remembered against replay (each until
	// it expires); 0 means 65536. When full, hand-overs are refused (503)
	// until tokens expire.
	MaxTokens int
	// Turns, if set, replaces the edge's round-robin counters with ones
	// the instances share (cluster.Turns.Next); it must return promptly.
	Turns func(key string) uint64
	// Alive, if set, tells whether another instance is up
	// (cluster.Presence.Alive): requests for callees registered through
	// an instance that is down are not handed to it.
	Alive func(instance string) bool

	tokens *flowTokens // set by New when Secret and Self are
	self   sip.Uri
}

// flowParam is the Route URI parameter that carries a flow token.
const flowParam = "fl"

// flowTTL is how long a flow token is good for: a hand-over is sent at
// once, and INVITE retransmissions carry the same token within Timer B.
const flowTTL = 32 * time.Second

// flowTokens makes and checks flow tokens and remembers the used ones.
type flowTokens struct {
	secret []byte
	max    int
	now    func() time.Time

	mu   sync.Mutex
	seen map[string]int64 // nonce -> expiry, Unix seconds

	size     prometheus.GaugeFunc
	outcomes *prometheus.CounterVec
}

func newFlowTokens(o ClusterOptions, reg prometheus.Registerer) (*flowTokens, error) {
	f := &flowTokens{secret: o.Secret, max: o.MaxTokens, now: time.Now, seen: make(map[string]int64)}
	if f.max <= 0 {
		f.max = 1 << 16
	}
	f.outcomes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "routr", Subsystem: "cluster", Name: "handovers_total",
		Help: "Requests handed between edge instances: sent, delivered, or refused (forged, expired, replayed, full, gone).",
	}, []string{"outcome"})
	f.size = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "routr", Subsystem: "cluster", Name: "flow_tokens",
		Help: "Flow tokens remembered against replay (bounded by ClusterOptions.MaxTokens).",
	}, func() float64 { f.mu.Lock(); defer f.mu.Unlock(); return float64(len(f.seen)) })
	for _, c := range []prometheus.Collector{f.outcomes, f.size} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("edge: register cluster metrics: %w", err)
		}
	}
	return f, nil
}

// make returns a token for delivering a request of callID on the
// connection (transport, source).
func (f *flowTokens) make(callID, transport, source string) string {
	var n [9]byte
	_, _ = rand.Read(n[:])
	nonce := base64.RawURLEncoding.EncodeToString(n[:])
	exp := strconv.FormatInt(f.now().Add(flowTTL).Unix(), 10)
	return transport + "~" + source + "~" + exp + "~" + nonce + "~" + f.mac(callID, transport, source, exp, nonce)
}

func (f *flowTokens) mac(callID, transport, source, exp, nonce string) string {
	m := hmac.New(sha256.New, f.secret)
	for _, s := range []string{"routr-flow", callID, transport, source, exp, nonce} {
		m.Write([]byte(s))
		m.Write([]byte{0})
	}
	var sum [32]byte
	return base64.RawURLEncoding.EncodeToString(m.Sum(sum[:0])[:16])
}

// Reasons a token is refused.
var (
	errFlowForged   = errors.New("flow token: bad signature")
	errFlowExpired  = errors.New("flow token: expired")
	errFlowReplayed = errors.New("flow token: already used")
	errFlowFull     = errors.New("flow token: too many outstanding")
)

// check verifies token for callID, consumes it, and returns the
// connection it names.
func (f *flowTokens) check(callID, token string) (transport, source string, err error) {
	parts := strings.Split(token, "~")
	if len(parts) != 5 {
		return "", "", errFlowForged
	}
	transport, source, exp, nonce, mac := parts[0], parts[1], parts[2], parts[3], parts[4]
	if !hmac.Equal([]byte(mac), []byte(f.mac(callID, transport, source, exp, nonce))) {
		return "", "", errFlowForged
	}
	expires, err := strconv.ParseInt(exp, 10, 64)
	now := f.now().Unix()
	if err != nil || now > expires {
		return "", "", errFlowExpired
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, used := f.seen[nonce]; used {
		return "", "", errFlowReplayed
	}
	if len(f.seen) >= f.max {
		for k, e := range f.seen {
			if e < now {
				delete(f.seen, k)
			}
		}
		if len(f.seen) >= f.max {
			return "", "", errFlowFull
		}
	}
	f.seen[nonce] = expires
	return transport, source, nil
}

// initCluster sets up the hand-over between instances, when configured.
func (s *Server) initCluster() error {
	if len(s.opts.Cluster.Secret) == 0 || s.opts.Cluster.Self == "" {
		return nil
	}
	var u sip.Uri
	if err := sip.ParseUri(s.opts.Cluster.Self, &u); err != nil {
		return fmt.Errorf("edge: cluster address %q: %w", s.opts.Cluster.Self, err)
	}
	f, err := newFlowTokens(s.opts.Cluster, s.opts.Registerer)
	if err != nil {
		return err
	}
	s.opts.Cluster.tokens, s.opts.Cluster.self = f, u
	return nil
}

// viaInstance reports whether the binding is reached through the instance
// it registered through: over TCP, TLS or WebSocket only that instance
// holds the connection, and over UDP only its address is in the NAT
// binding the phone keeps open (as RFC 3327's Path has requests go
// through the proxy that saw the REGISTER). When that instance is down, a
// UDP binding is tried directly.
func (s *Server) viaInstance(b location.Binding) bool {
	c := s.opts.Cluster
	return c.tokens != nil && b.Instance != "" && b.Instance != c.Self && (c.Alive == nil || c.Alive(b.Instance))
}

func streamTransport(tp string) bool {
	switch strings.ToLower(tp) {
	case "tcp", "tls", "ws", "wss":
		return true
	}
	return false
}

// branchToInstance builds the branch that hands a request for binding t
// to the instance holding its connection: Request-URI the Contact, a
// Route to that instance with a flow token, and our Record-Route and Via
// at our cluster address, so that the dialog's later requests come back
// through us.
func (s *Server) branchToInstance(r *Request, base *sip.Request, t location.Binding, fork bool) (*branch, error) {
	var ruri, inst sip.Uri
	if err := sip.ParseUri(t.Contact, &ruri); err != nil {
		return nil, err
	}
	if err := sip.ParseUri(t.Instance, &inst); err != nil {
		return nil, fmt.Errorf("instance %q: %w", t.Instance, err)
	}
	req := base
	if fork {
		req = copyRequest(base)
	}
	req.Recipient = ruri
	transport := "udp"
	if tp, ok := inst.UriParams.Get("transport"); ok && tp != "" {
		transport = strings.ToLower(tp)
	}
	dest := hostPort(inst, transport)
	route := sip.Uri{Scheme: "sip", Host: inst.Host, Port: inst.Port, UriParams: sip.NewParams()}
	route.UriParams.Add("transport", transport)
	route.UriParams.Add("lr", "")
	route.UriParams.Add(flowParam, s.opts.Cluster.tokens.make(r.CallID(), strings.ToLower(t.Transport), t.Source))
	req.PrependHeader(&sip.RouteHeader{Address: route})
	self := s.opts.Cluster.self
	if r.Method == sip.INVITE || r.Method == sip.SUBSCRIBE || r.Method == sip.REFER {
		in := s.recordRoute(r.Transport(), r.Src.Addr(), r.CallID())
		req.PrependHeader(in)
		out := &sip.RecordRouteHeader{Address: sip.Uri{Scheme: "sip", Host: self.Host, Port: self.Port, UriParams: sip.NewParams()}}
		out.Address.UriParams.Add("transport", transport)
		out.Address.UriParams.Add("lr", "")
		out.Address.UriParams.Add("rt", s.rr.make(r.CallID()))
		markDoubled(in, out)
		req.PrependHeader(out)
	}
	v := s.via(transport, addrOf(dest), newBranch(req))
	v.Host, v.Port = self.Host, self.Port
	req.PrependHeader(v)
	req.SetTransport(upperTransport(transport))
	req.SetDestination(dest)
	s.opts.Cluster.tokens.outcomes.WithLabelValues("sent").Inc()
	return &branch{req: req}, nil
}

// handedOver reports whether req was sent to another instance with a flow
// token: the callee's Contact in its response is then that instance's
// business, not ours to rewrite.
func handedOver(req *sip.Request) bool {
	rt := req.Route()
	return rt != nil && rt.Address.UriParams.Has(flowParam)
}

// handOver delivers a request another instance handed to us on the
// connection its flow token names, and reports whether req was such a
// request (answered, whatever the outcome). A request with a flow Route
// but no valid token is refused: the token is the only way to reach a
// connection without being authenticated and routed here.
func (s *Server) handOver(r *Request) bool {
	rt := r.Route()
	if rt == nil || !rt.Address.UriParams.Has(flowParam) || r.inDialog() {
		return false
	}
	f := s.opts.Cluster.tokens
	if f == nil || !s.addrs.isOurs(rt.Address.Host, rt.Address.Port) {
		// Not a hand-over to us: routed like any request, after
		// authentication.
		return false
	}
	tok, _ := rt.Address.UriParams.Get(flowParam)
	transport, source, err := f.check(r.CallID(), tok)
	if err != nil {
		outcome := "forged"
		switch {
		case errors.Is(err, errFlowExpired):
			outcome = "expired"
		case errors.Is(err, errFlowReplayed):
			outcome = "replayed"
		case errors.Is(err, errFlowFull):
			outcome = "full"
		}
		f.outcomes.WithLabelValues(outcome).Inc()
		s.log.Warn("hand-over refused", "call_id", r.CallID(), "src", r.Src.String(), "reason", err)
		if outcome == "full" {
			s.reply(r, 503, "Service Unavailable", sip.NewHeader("Retry-After", "5"))
			return true
		}
		s.reply(r, 403, "Forbidden")
		return true
	}
	if _, err := netip.ParseAddrPort(source); err != nil || streamTransport(transport) && !s.conns.alive(source) {
		f.outcomes.WithLabelValues("gone").Inc()
		s.reply(r, 480, "Temporarily Unavailable")
		return true
	}
	base := s.prepare(r)
	removeFirstRoute(base)
	// prepare points the Contact at the sender for NAT; here the sender is
	// the other instance, which already did that for the real caller.
	base.RemoveHeader("Contact")
	for _, h := range r.GetHeaders("Contact") {
		base.AppendHeader(sip.HeaderClone(h))
	}
	b, err := s.branchTo(r, base, location.Binding{Contact: r.Recipient.String(), Transport: transport, Source: source}, false)
	if err != nil {
		s.reply(r, 400, "Bad Request")
		return true
	}
	f.outcomes.WithLabelValues("delivered").Inc()
	s.runBranches(r, []*branch{b}, false, nil)
	return true
}
