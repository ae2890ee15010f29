package edge

import (
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Request is one SIP request on its way through the handler chain.
type Request struct {
	*sip.Request
	// Tx is the server transaction; nil for ACK to a 2xx, which has none
	// worth keeping.
	Tx sip.ServerTransaction
	// Src is the address the packet came from (not what Via claims).
	Src netip.AddrPort
}

func newRequest(req *sip.Request, tx sip.ServerTransaction) *Request {
	src, _ := netip.ParseAddrPort(req.Source())
	return &Request{Request: req, Tx: tx, Src: netip.AddrPortFrom(src.Addr().Unmap(), src.Port())}
}

// CallID returns the Call-ID or "".
func (r *Request) CallID() string {
	if h := r.Request.CallID(); h != nil {
		return h.Value()
	}
	return ""
}

// Transport is the lower-case transport the request arrived on.
func (r *Request) Transport() string {
	return lowerTransport(r.Request.Transport())
}

// lowerTransport is strings.ToLower(t) without its allocation for the
// transports' names (sipgo names them in upper case).
func lowerTransport(t string) string {
	switch t {
	case "UDP", "udp":
		return "udp"
	case "TCP", "tcp":
		return "tcp"
	case "TLS", "tls":
		return "tls"
	case "WS", "ws":
		return "ws"
	case "WSS", "wss":
		return "wss"
	default:
		return strings.ToLower(t)
	}
}

// upperTransport is strings.ToUpper(t) without its allocation for the
// transports' names (routr names them in lower case, sipgo in upper).
func upperTransport(t string) string {
	switch t {
	case "udp", "UDP":
		return "UDP"
	case "tcp", "TCP":
		return "TCP"
	case "tls", "TLS":
		return "TLS"
	case "ws", "WS":
		return "WS"
	case "wss", "WSS":
		return "WSS"
	default:
		return strings.ToUpper(t)
	}
}

// inDialog reports whether the request belongs to an established dialog
// (To tag present), so it is routed by its Route set, not by resources.
func (r *Request) inDialog() bool {
	to := r.To()
	return to != nil && to.Params.Has("tag")
}

// Handler serves one SIP request: it either answers it or passes it on.
type Handler interface {
	ServeSIP(r *Request)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(r *Request)

// ServeSIP calls f(r).
func (f HandlerFunc) ServeSIP(r *Request) { f(r) }

// Middleware wraps a Handler.
type Middleware func(Handler) Handler

// allowed lists the methods the edge handles, for Allow headers.
const allowed = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO, UPDATE, PRACK, MESSAGE, NOTIFY, SUBSCRIBE, REFER"

// knownMethods are RFC methods the edge recognises; a recognised method it
// does not handle is answered 405, anything else 501.
var knownMethods = map[sip.RequestMethod]bool{
	sip.INVITE: true, sip.ACK: true, sip.CANCEL: true, sip.BYE: true,
	sip.OPTIONS: true, sip.REGISTER: true, sip.INFO: true, sip.UPDATE: true,
	sip.PRACK: true, sip.MESSAGE: true, sip.NOTIFY: true, sip.SUBSCRIBE: true,
	sip.REFER: true, sip.PUBLISH: true,
}

// buildChain assembles guarded -> limited -> validate -> drainGate ->
// dispatch (the list is innermost first).
func (s *Server) buildChain() Handler {
	var h Handler = HandlerFunc(s.dispatch)
	for _, mw := range []Middleware{s.drainGate, s.validate, s.limited, s.guarded} {
		h = mw(h)
	}
	return h
}

// dispatch sends a validated request to the part of the edge that handles it.
func (s *Server) dispatch(r *Request) {
	switch r.Method {
	case sip.REGISTER:
		s.register(r)
	case sip.ACK:
		s.forwardAck(r)
	case sip.CANCEL:
		// sipgo answers a CANCEL that matches a pending INVITE itself; one
		// that reaches us matches nothing.
		s.reply(r, 481, "Call/Transaction Does Not Exist")
	case sip.OPTIONS:
		if r.inDialog() || !s.addressedToEdge(r) {
			s.proxy(r)
			return
		}
		s.reply(r, 200, "OK", sip.NewHeader("Allow", allowed), sip.NewHeader("Accept", "application/sdp"))
	case sip.PUBLISH:
		s.reply(r, 405, "Method Not Allowed", sip.NewHeader("Allow", allowed))
	default:
		if !knownMethods[r.Method] {
			s.reply(r, 501, "Not Implemented", sip.NewHeader("Allow", allowed))
			return
		}
		s.proxy(r)
	}
}

// validate applies RFC 3261 16.3 request validation: Max-Forwards, loops,
// and the headers a proxy needs.
func (s *Server) validate(next Handler) Handler {
	return HandlerFunc(func(r *Request) {
		if r.From() == nil || r.To() == nil || r.Request.CallID() == nil || r.CSeq() == nil || r.Via() == nil {
			if r.Method != sip.ACK {
				s.reply(r, 400, "Bad Request")
			}
			return
		}
		// sipgo upper-cases the request-line method but not CSeq's, so an
		// extension method in mixed case (RFC 4475 intmeth) compares folded.
		if !strings.EqualFold(string(r.CSeq().MethodName), string(r.Method)) {
			if r.Method != sip.ACK {
				s.reply(r, 400, "Bad Request (CSeq method)")
			}
			return
		}
		if code, reason := malformed(r); code != 0 {
			if r.Method != sip.ACK {
				s.replyMalformed(r, code, reason)
			}
			return
		}
		if r.Method == sip.ACK || r.Method == sip.CANCEL {
			next.ServeSIP(r)
			return
		}
		if mf := r.MaxForwards(); mf != nil && mf.Val() == 0 {
			if r.Method == sip.OPTIONS && s.addressedToEdge(r) && !r.inDialog() {
				next.ServeSIP(r)
				return
			}
			s.reply(r, 483, "Too Many Hops")
			return
		}
		if s.isLoop(r.Request) {
			s.reply(r, 482, "Loop Detected")
			return
		}
		if pr := firstHeader(r, "proxy-require"); pr != nil {
			s.reply(r, 420, "Bad Extension", sip.NewHeader("Unsupported", pr.Value()))
			return
		}
		next.ServeSIP(r)
	})
}

// addressedToEdge reports whether the Request-URI names the edge itself
// rather than a user: no user part and a host that is one of ours.
func (s *Server) addressedToEdge(r *Request) bool {
	u := r.Recipient
	if u.User != "" {
		return false
	}
	return s.isOurHost(u.Host, u.Port)
}

func (s *Server) isOurHost(host string, port int) bool {
	if s.addrs.isOurs(host, port) {
		return true
	}
	set := s.opts.Resources.Load()
	return set != nil && set.DomainByURI(host) != nil
}
