package edge

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/routr-go/routr/internal/calls"
	"github.com/routr-go/routr/internal/connect"
	"github.com/routr-go/routr/internal/location"
	"github.com/routr-go/routr/internal/routing"
)

// maxForks bounds the parallel branches of one request: an AOR may hold
// more bindings, but the edge rings at most this many at once.
const maxForks = 10

// asIs is a client request option that leaves the request as the proxy
// built it: sipgo otherwise adds headers of its own.
func asIs(*sipgo.Client, *sip.Request) error { return nil }

// proxy routes a request that is not addressed to the edge itself.
func (s *Server) proxy(r *Request) {
	if s.handOver(r) {
		return
	}
	if r.inDialog() {
		s.proxyInDialog(r)
		return
	}
	s.proxyInitial(r)
}

// proxyInitial identifies and authenticates the sender of an
// out-of-dialog request, asks routing where it goes and carries the
// decision out.
func (s *Server) proxyInitial(r *Request) {
	set := s.opts.Resources.Load()
	from := r.From()
	var caller routing.Caller
	if token := r.headerValue(connect.Header); token != "" {
		claims, ok := s.verifyConnect(r, token)
		if !ok {
			return
		}
		caller = routing.Caller{Kind: routing.CallerConnect, Domain: set.DomainByURI(claims.Domain), AORLink: claims.AORLink}
	} else {
		caller = routing.Identify(set, from.Address.User, from.Address.Host, r.Recipient.Host)
	}
	switch {
	case caller.Kind == routing.CallerUnknown:
		s.reply(r, 403, "Forbidden")
		return
	case !caller.Admits(r.Src.Addr()):
		// Before any challenge: a source the ACL refuses learns nothing.
		s.metrics.authFailMethod.inc(r.Method)
		s.reply(r, 403, "Forbidden")
		return
	case caller.Kind == routing.CallerAgent:
		if !s.authenticate(r, proxyAuth, caller.Domain, caller.Agent) {
			return
		}
	case caller.MustAuthenticate():
		// Peers and trunks: the realm is the Request-URI host, as in
		// Routr.
		if !s.authenticateWith(r, proxyAuth, r.Recipient.Host, caller.Credentials()) {
			return
		}
	}
	targetUser := r.Recipient.User
	if s.opts.EnforceE164 {
		targetUser = s.e164(targetUser)
	}
	dec := routing.Route(routing.Input{
		From:        caller,
		TargetUser:  targetUser,
		TargetHost:  r.Recipient.Host,
		Source:      r.Src.Addr(),
		DisplayName: from.DisplayName,
		Header:      r.headerValue,
		Turn:        s.nextTurn,
	}, set, s.locate)
	if !dec.Forward() {
		s.reply(r, dec.Status, dec.Reason)
		return
	}

	base := s.prepare(r)
	if s.opts.EnforceE164 {
		s.enforceE164(base)
	}
	base.RemoveHeader("Proxy-Authorization") // consumed here (RFC 3261 22.3)
	base.RemoveHeader(connect.Header)        // a bearer credential: never forwarded
	base.RemoveHeader(routing.HeaderCallDirection)
	for _, name := range dec.Remove {
		base.RemoveHeader(name)
	}
	for _, h := range dec.Headers {
		base.AppendHeader(sip.NewHeader(h.Name, h.Value))
	}
	var (
		brs   []*branch
		again retryFunc
	)
	if len(dec.Hops) > 0 {
		h := s.newHopper(r, base, dec)
		b := h.next()
		if b == nil {
			s.reply(r, 503, "Service Unavailable")
			return
		}
		brs, again = []*branch{b}, h.again
	} else {
		targets := dec.Targets
		if len(targets) > maxForks {
			targets = targets[:maxForks]
		}
		brs = make([]*branch, 0, len(targets))
		for _, t := range targets {
			b, err := s.branchTo(r, base, t, len(targets) > 1)
			if err != nil {
				s.log.Warn("unusable binding", "aor", dec.AOR, "contact", t.Contact, "error", err)
				continue
			}
			brs = append(brs, b)
		}
	}
	if len(brs) == 0 {
		s.reply(r, 480, "Temporarily Unavailable")
		return
	}
	track := r.Method == sip.INVITE
	if track {
		s.opts.Calls.Started(calls.StartInfo{
			CallID:       r.CallID(),
			From:         from.Address.String(),
			To:           r.To().Address.String(),
			ExtraHeaders: xHeaders(r.Request),
			Metadata:     dec.Metadata,
		})
	}
	s.runBranches(r, brs, track, again)
}

// headerValue returns the value of the first header called name, "" when
// there is none.
func (r *Request) headerValue(name string) string {
	if h := firstHeader(r, name); h != nil {
		return h.Value()
	}
	return ""
}

// locate is routing's view of the location service.
func (s *Server) locate(aor string) []location.Binding {
	bs, err := s.opts.Location.Lookup(context.Background(), aor)
	if err != nil {
		s.log.Error("location lookup", "aor", aor, "error", err)
		return nil
	}
	return bs
}

// prepare copies the received request for forwarding (RFC 3261 16.6 steps
// 1-3): the received request itself is never changed, since sipgo's server
// transaction still uses it for 100 Trying and 487.
func (s *Server) prepare(r *Request) *sip.Request {
	req := copyRequest(r.Request)
	// The copy shares the Max-Forwards header value with the original:
	// replace it rather than decrement it in place.
	mf := sip.MaxForwardsHeader(70)
	if old := req.MaxForwards(); old != nil {
		mf = sip.MaxForwardsHeader(old.Val() - 1)
		req.ReplaceHeader(&mf)
	} else {
		req.AppendHeader(&mf)
	}
	// RFC 3581: record where the request really came from, so responses
	// find their way back through NAT.
	if v := req.Via(); v != nil {
		if v.Params.Has("rport") {
			v.Params.Add("rport", strconv.Itoa(int(r.Src.Port())))
		}
		if v.Host != r.Src.Addr().String() {
			v.Params.Add("received", r.Src.Addr().String())
		}
	}
	if r.Method == sip.INVITE || r.Method == sip.SUBSCRIBE || r.Method == sip.REFER {
		fixNATContact(req, r.Src, r.Transport())
	}
	return req
}

// fixNATContact points the Contact of a dialog-creating message at the
// address the message really came from, when the two differ, so that
// in-dialog requests reach a UA behind NAT, and over TCP reach it on the
// connection it opened.
func fixNATContact(m interface{ Contact() *sip.ContactHeader }, src netip.AddrPort, transport string) {
	c := m.Contact()
	if c == nil || !src.IsValid() || c.Address.Wildcard {
		return
	}
	port := c.Address.Port
	if port == 0 {
		port = sip.DefaultPort(transport)
	}
	ip, err := netip.ParseAddr(c.Address.Host)
	reliable := transport != "udp"
	if err == nil && ip.Unmap() == src.Addr() && uint16(port) == src.Port() {
		return
	}
	if err != nil && !reliable {
		return // a name: trust it over UDP
	}
	c.Address.Host = src.Addr().String()
	c.Address.Port = int(src.Port())
}

// branch is one downstream leg of a forwarded request.
type branch struct {
	req         *sip.Request
	tx          sip.ClientTransaction
	provisional bool
	final       bool
	cancelWant  bool
	cancelSent  bool
	// silent is closed when the branch may be given up for want of any
	// response (a trunk hop); nil for branches that wait for Timer B.
	silent <-chan time.Time
	// gaveUp is set when the edge ended a silent branch itself.
	gaveUp bool
	// authAnswered is set on a branch that already carries our answer to
	// a provider's challenge: a second challenge is relayed.
	authAnswered bool
}

// branchTo builds the request for one binding: Request-URI from the
// Contact, sent to the address the REGISTER came from (NAT), with our
// Record-Route (doubled when the transport changes, RFC 5658) and Via.
func (s *Server) branchTo(r *Request, base *sip.Request, t location.Binding, fork bool) (*branch, error) {
	if s.viaInstance(t) {
		return s.branchToInstance(r, base, t, fork)
	}
	var ruri sip.Uri
	if err := sip.ParseUri(t.Contact, &ruri); err != nil {
		return nil, err
	}
	req := base // already a copy of the received request
	if fork {
		req = copyRequest(base)
	}
	req.Recipient = ruri
	transport := strings.ToLower(t.Transport)
	if transport == "" {
		transport = "udp"
	}
	dest := t.Source
	if dest == "" {
		dest = hostPort(ruri, transport)
	}
	peer := addrOf(dest)
	if r.Method == sip.INVITE || r.Method == sip.SUBSCRIBE || r.Method == sip.REFER {
		in := s.recordRoute(r.Transport(), r.Src.Addr(), r.CallID())
		req.PrependHeader(in)
		if transport != r.Transport() || !sameHost(s, r.Transport(), r.Src.Addr(), transport, peer) {
			out := s.recordRoute(transport, peer, r.CallID())
			markDoubled(in, out)
			req.PrependHeader(out)
		}
	}
	req.PrependHeader(s.via(transport, peer, newBranch(req)))
	req.SetTransport(upperTransport(transport))
	req.SetDestination(dest)
	return &branch{req: req}, nil
}

// sameHost reports whether the edge advertises the same address towards
// both sides; if not, Record-Route must be doubled.
func sameHost(s *Server, t1 string, p1 netip.Addr, t2 string, p2 netip.Addr) bool {
	h1, port1 := s.addrs.hostPort(t1, p1)
	h2, port2 := s.addrs.hostPort(t2, p2)
	return h1 == h2 && port1 == port2
}

func addrOf(hostport string) netip.Addr {
	ap, err := netip.ParseAddrPort(hostport)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// hostPort is where a URI points: host and port, the transport's default
// port when none is given.
func hostPort(u sip.Uri, transport string) string {
	port := u.Port
	if port == 0 {
		port = sip.DefaultPort(transport)
	}
	return net.JoinHostPort(strings.Trim(u.Host, "[]"), strconv.Itoa(port))
}

// branchEvent is a response or the end of a branch, fanned in to the one
// goroutine that decides what the caller sees, so that responses are
// relayed in the order the transactions produced them.
type branchEvent struct {
	b   *branch
	res *sip.Response
	err error
}

// retryFunc is asked, when a branch fails before the call is answered or
// cancelled, for a branch to try instead (serial forking); nil means none.
// res is the failure response, nil when the transaction ended without one
// (err says why).
type retryFunc func(b *branch, res *sip.Response, err error) *branch

// runBranches forwards the branches in parallel and relays their answers
// (RFC 3261 16.7): provisional responses as they come, every 2xx, and else
// the best final response once every branch is done. It returns when the
// caller's transaction has its final answer. again, when not nil, may
// replace a failed branch with another one.
func (s *Server) runBranches(r *Request, brs []*branch, track bool, again retryFunc) {
	callID := r.CallID()
	evs := make(chan branchEvent, 4*len(brs)+4)
	silent := make(chan *branch, 1)
	live := 0
	var start func(b *branch)
	start = func(b *branch) {
		tx, err := s.clientRequest(b.req)
		if err != nil {
			b.final = true
			s.log.Debug("forward failed", "call_id", callID, "dest", b.req.Destination(), "error", err)
			if again != nil {
				if nb := again(b, nil, err); nb != nil {
					brs = append(brs, nb)
					start(nb)
				}
			}
			return
		}
		b.tx = tx
		live++
		s.metrics.clientTx.Inc()
		if r.Method == sip.INVITE {
			tx.OnRetransmission(func(res *sip.Response) {
				// 2xx retransmissions reach only this hook; the caller
				// needs them until its ACK gets through.
				if res.IsSuccess() {
					s.relay(r, s.fixResponse(res, b), true)
				}
			})
		}
		go s.pump(b, evs)
		if b.silent != nil {
			go func() {
				select {
				case <-b.silent:
					select {
					case silent <- b:
					case <-tx.Done():
					}
				case <-tx.Done():
				}
			}()
		}
	}
	for _, b := range slices.Clone(brs) {
		start(b)
	}

	var cancelled chan *sip.Request
	var vanished <-chan struct{}
	if r.Method == sip.INVITE && r.Tx != nil {
		cancelled = make(chan *sip.Request, 1)
		r.Tx.OnCancel(func(c *sip.Request) {
			// Runs under the transaction's lock: only signal.
			select {
			case cancelled <- c:
			default:
			}
		})
		vanished = callerVanished(r.Tx)
	}

	var (
		best       *sip.Response
		answered   bool
		wasCancel  bool
		timeouts   int
		transports int
	)
	cancelOthers := func(except *branch) {
		for _, o := range brs {
			if o != except && !o.final && o.tx != nil {
				o.cancelWant = true
				if o.provisional {
					s.sendCancel(o)
				}
			}
		}
	}
	retry := func(b *branch, res *sip.Response, err error) bool {
		if again == nil || answered || wasCancel {
			return false
		}
		nb := again(b, res, err)
		if nb == nil {
			return false
		}
		brs = append(brs, nb)
		start(nb)
		return true
	}
	for live > 0 {
		select {
		case b := <-silent:
			if !b.provisional && !b.final {
				// Nothing heard, not even 100 Trying: give up on this
				// hop now rather than after Timer B.
				b.gaveUp = true
				b.tx.Terminate()
			}
		case c := <-cancelled:
			cancelled = nil
			wasCancel = !answered
			if wasCancel && track {
				s.opts.Calls.Cancelled(callID, xHeaders(c))
			}
			cancelOthers(nil)
		case <-vanished:
			// The caller's connection closed: no one is left to take
			// the call, so it ends as if cancelled.
			vanished, cancelled = nil, nil
			wasCancel = !answered
			if wasCancel && track {
				s.opts.Calls.Cancelled(callID, nil)
			}
			cancelOthers(nil)
		case ev := <-evs:
			b := ev.b
			if ev.res == nil {
				// The transaction ended without a final response.
				if !b.final {
					b.final = true
					live--
					s.metrics.clientTx.Dec()
					err := ev.err
					if b.gaveUp {
						err = sip.ErrTransactionTimeout
					}
					if retry(b, nil, err) {
						continue
					}
					switch {
					case errors.Is(err, sip.ErrTransactionTimeout):
						timeouts++
					default:
						transports++
					}
				}
				continue
			}
			res := ev.res
			code := res.StatusCode
			switch {
			case code < 200:
				b.provisional = true
				if b.cancelWant {
					s.sendCancel(b)
				}
				if code > 100 && !answered && !wasCancel && best == nil {
					s.relay(r, s.fixResponse(res, b), true)
				}
			case code < 300:
				b.final = true
				live--
				s.metrics.clientTx.Dec()
				if wasCancel {
					// The callee answered a call the caller cancelled:
					// end the callee's side of it.
					s.hangUp(b, res)
					continue
				}
				// Bookkeeping first: once the 2xx is out, the caller's
				// ACK and BYE may be handled before this goroutine runs
				// again.
				if r.Method == sip.INVITE {
					s.acks.expect(callID, endInvite(b, r.Tx))
				}
				first := !answered
				if first {
					answered = true
					if track {
						s.opts.Calls.Answered(callID)
					}
				}
				s.relay(r, s.fixResponse(res, b), true)
				if first {
					cancelOthers(b)
				}
			default:
				b.final = true
				live--
				s.metrics.clientTx.Dec()
				if retry(b, res, nil) {
					continue
				}
				if best == nil || betterFinal(code, best.StatusCode) {
					best = res
				}
				if code >= 600 && !answered {
					cancelOthers(b)
				}
			}
		}
	}

	if answered || wasCancel {
		return
	}
	switch {
	case best != nil:
		if track {
			s.opts.Calls.Failed(callID, best.StatusCode, xHeaders(best))
		}
		s.relay(r, best, false)
	case timeouts > 0 && transports == 0:
		s.reply(r, 408, "Request Timeout")
		if track {
			s.opts.Calls.TimedOut(callID)
		}
	default:
		s.reply(r, 503, "Service Unavailable")
		if track {
			s.opts.Calls.Unreachable(callID)
		}
	}
}

// endInvite ends the client transaction of the branch that answered an
// INVITE once the caller's ACK has passed (see ackGate): later 2xx
// retransmissions go to strayResponse. The server transaction ends T1
// later: a retransmission of the INVITE read just before the ACK may be
// handled just after it (one goroutine per message) and must still find
// its transaction, not start a second call; a caller that sent the ACK
// has the 2xx and retransmits no more. Left to Timer L
// (SIP_TRANSACTION_LINGER, 5 s) it would hold the INVITE and its 2xx:
// ~110 MB of live heap at 5,000 calls/s. Without an ACK, Timer L ends it.
func endInvite(b *branch, server sip.ServerTransaction) func() {
	return func() {
		b.tx.Terminate()
		if server != nil {
			time.AfterFunc(sip.T1, server.Terminate)
		}
	}
}

// pump moves one client transaction's responses to the fan-in channel
// until its final response or its end. It never outlives the transaction.
func (s *Server) pump(b *branch, evs chan<- branchEvent) {
	for {
		select {
		case res := <-b.tx.Responses():
			if res.StatusCode >= 200 {
				// Ended before the answer is relayed: a retransmission of
				// it that arrives once the caller has it is stray.
				endNonInvite(b.tx, b.req)
				evs <- branchEvent{b: b, res: res}
				return
			}
			evs <- branchEvent{b: b, res: res}
		case <-b.tx.Done():
			evs <- branchEvent{b: b, err: b.tx.Err()}
			return
		}
	}
}

// endNonInvite ends a non-INVITE client transaction at its final
// response rather than after Timer K (T4, 5 s, over UDP), which only
// absorbs retransmissions of that response: without the transaction they
// reach strayResponse, which drops them. INVITE transactions end at the
// ACK (endInvite) or by their timers.
func endNonInvite(tx sip.ClientTransaction, req *sip.Request) {
	if req.Method != sip.INVITE {
		tx.Terminate()
	}
}

// betterFinal implements RFC 3261 16.7 step 6 loosely: a 6xx wins, then
// the lowest class, preferring anything to a 408 or 503 we made up.
func betterFinal(code, than int) bool {
	if than >= 600 {
		return false
	}
	if code >= 600 {
		return true
	}
	return code/100 < than/100 || (code/100 == than/100 && code < than)
}

// fixResponse copies a response from downstream for relaying, fixing the
// Contact of a dialog-creating one for NAT on the way. The copy is the
// proxy's own: the received response stays with its client transaction.
func (s *Server) fixResponse(res *sip.Response, b *branch) *sip.Response {
	out := copyResponse(res)
	if out.Contact() == nil || res.StatusCode < 101 || res.StatusCode >= 300 || handedOver(b.req) {
		return out
	}
	if src, err := netip.ParseAddrPort(res.Source()); err == nil {
		fixNATContact(out, netip.AddrPortFrom(src.Addr().Unmap(), src.Port()), lowerTransport(b.req.Transport()))
	}
	return out
}

// relay sends a downstream response upstream: our Via comes off and the
// response goes where the caller's Via says (RFC 3261 16.7 step 9, RFC
// 3581). owned says res is already a copy the proxy may change.
func (s *Server) relay(r *Request, res *sip.Response, owned bool) {
	out := res
	if !owned {
		out = copyResponse(res)
	}
	out.RemoveHeader("Via")
	out.SetDestination(responseDest(r))
	s.metrics.relayedByCode.inc(out.StatusCode)
	if r.Tx == nil {
		return
	}
	if s.sendFinalCached(r, out) {
		return
	}
	if err := r.Tx.Respond(out); err != nil {
		s.log.Debug("relay response", "call_id", r.CallID(), "status", out.StatusCode, "error", err)
	}
}

// responseDest is the address responses to r go to: the source address,
// with the source port when the client asked for rport, else its Via port.
func responseDest(r *Request) string {
	v := r.Via()
	if v == nil || v.Params.Has("rport") || r.Transport() != "udp" {
		return r.Src.String()
	}
	port := v.Port
	if port == 0 {
		port = 5060
	}
	return netip.AddrPortFrom(r.Src.Addr(), uint16(port)).String()
}

// sendCancel cancels a pending branch (RFC 3261 9.1): same Request-URI,
// Call-ID, From, To, CSeq number and top Via as the INVITE it cancels.
func (s *Server) sendCancel(b *branch) {
	if b.cancelSent || b.final {
		return
	}
	b.cancelSent = true
	inv := b.req
	c := sip.NewRequest(sip.CANCEL, *inv.Recipient.Clone())
	c.AppendHeader(inv.Via().Clone())
	for _, h := range inv.GetHeaders("Route") {
		c.AppendHeader(sip.HeaderClone(h))
	}
	mf := sip.MaxForwardsHeader(70)
	c.AppendHeader(&mf)
	c.AppendHeader(sip.HeaderClone(inv.From()))
	c.AppendHeader(sip.HeaderClone(inv.To()))
	c.AppendHeader(sip.HeaderClone(inv.CallID()))
	c.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	c.SetBody(nil)
	c.SetTransport(inv.Transport())
	c.SetDestination(inv.Destination())
	s.fireAndForget(c)
}

// hangUp ends a dialog that a callee set up after the caller gave up:
// ACK its 2xx, then BYE it.
func (s *Server) hangUp(b *branch, res *sip.Response) {
	inv := b.req
	target := inv.Recipient
	if c := res.Contact(); c != nil {
		target = c.Address
	}
	mk := func(m sip.RequestMethod, seq uint32) *sip.Request {
		q := sip.NewRequest(m, *target.Clone())
		v := inv.Via().Clone()
		v.Params.Add("branch", branchMagic+loopHash(inv)+"."+sip.GenerateBranchN(10)[len("z9hG4bK."):])
		q.AppendHeader(v)
		mf := sip.MaxForwardsHeader(70)
		q.AppendHeader(&mf)
		q.AppendHeader(sip.HeaderClone(inv.From()))
		q.AppendHeader(sip.HeaderClone(res.To()))
		q.AppendHeader(sip.HeaderClone(inv.CallID()))
		q.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: m})
		q.SetBody(nil)
		q.SetTransport(inv.Transport())
		q.SetDestination(inv.Destination())
		return q
	}
	if err := s.writeRequest(mk(sip.ACK, inv.CSeq().SeqNo)); err != nil {
		s.log.Debug("ack after cancel", "error", err)
	}
	s.fireAndForget(mk(sip.BYE, inv.CSeq().SeqNo+1))
}

// fireAndForget sends a request whose answer does not matter to anyone,
// draining its transaction so sipgo never blocks on it.
func (s *Server) fireAndForget(req *sip.Request) {
	tx, err := s.client.TransactionRequest(withDNS(context.Background()), req, asIs)
	if err != nil {
		s.log.Debug("send", "method", req.Method, "error", err)
		return
	}
	go func() {
		defer tx.Terminate()
		for {
			select {
			case res := <-tx.Responses():
				if res.StatusCode >= 200 {
					return
				}
			case <-tx.Done():
				return
			}
		}
	}()
}

// proxyInDialog routes a request inside a dialog the edge record-routed:
// by its Route set, with no new challenge. The Route must carry our token
// for this Call-ID.
func (s *Server) proxyInDialog(r *Request) {
	s.acks.wait(r.CallID())
	req := s.prepare(r)
	if _, valid := s.popOurRoutes(req, r.CallID()); !valid {
		s.reply(r, 403, "Forbidden")
		return
	}
	b, err := s.nextHop(r, req)
	if errors.Is(err, errNoFlow) {
		s.peerGone(r)
		return
	}
	if err != nil {
		s.reply(r, 400, "Bad Request")
		return
	}
	if r.Method != sip.BYE {
		s.runBranches(r, []*branch{b}, false, nil)
		return
	}
	s.runBye(r, b)
}

// runBye forwards a BYE and ends the call with its outcome, whichever side
// sent it.
func (s *Server) runBye(r *Request, b *branch) {
	s.forwardOne(r, b, func(code int) {
		s.opts.Calls.Bye(r.CallID(), code, xHeaders(r.Request))
	})
}

// forwardOne forwards a single-branch request. final, when not nil, learns
// the final status before the caller does (0 when the request timed out
// downstream), so that an event about it is never behind the response.
func (s *Server) forwardOne(r *Request, b *branch, final func(code int)) {
	if final == nil {
		final = func(int) {}
	}
	tx, err := s.client.TransactionRequest(withDNS(context.Background()), b.req, asIs)
	if err != nil {
		final(503)
		s.reply(r, 503, "Service Unavailable")
		return
	}
	s.metrics.clientTx.Inc()
	defer s.metrics.clientTx.Dec()
	for {
		select {
		case res := <-tx.Responses():
			if res.StatusCode < 200 {
				if res.StatusCode > 100 {
					s.relay(r, res, false)
				}
				continue
			}
			final(res.StatusCode)
			endNonInvite(tx, b.req) // before the relay, as in pump
			s.relay(r, res, false)
			return
		case <-tx.Done():
			if errors.Is(tx.Err(), sip.ErrTransactionTimeout) {
				final(0)
				s.reply(r, 408, "Request Timeout")
				return
			}
			final(503)
			s.reply(r, 503, "Service Unavailable")
			return
		}
	}
}

// nextHop prepares an in-dialog request for the next hop: the next Route
// entry when there is one, else the Request-URI (loose routing, RFC 3261
// 16.12).
func (s *Server) nextHop(r *Request, req *sip.Request) (*branch, error) {
	target := req.Recipient
	if rt := req.Route(); rt != nil {
		target = rt.Address
	}
	if target.Host == "" {
		return nil, errors.New("no next hop")
	}
	transport := "udp"
	if tp, ok := target.UriParams.Get("transport"); ok && tp != "" {
		transport = strings.ToLower(tp)
	} else if target.Scheme == "sips" {
		transport = "tls"
	}
	dest := hostPort(target, transport)
	if s.noFlow(transport, dest) {
		return nil, errNoFlow
	}
	peer := addrOf(dest)
	req.PrependHeader(s.via(transport, peer, newBranch(req)))
	req.SetTransport(upperTransport(transport))
	req.SetDestination(dest)
	return &branch{req: req}, nil
}

// forwardAck routes an ACK for a 2xx, which has no transaction: statelessly,
// by its Route set, like any in-dialog request. ACKs for non-2xx responses
// never get here: sipgo's INVITE server transactions absorb them.
func (s *Server) forwardAck(r *Request) {
	req := s.prepare(r)
	if _, valid := s.popOurRoutes(req, r.CallID()); !valid {
		s.log.Debug("ack without our route dropped", "call_id", r.CallID())
		return
	}
	b, err := s.nextHop(r, req)
	if err != nil {
		return
	}
	if err := s.writeRequest(b.req); err != nil {
		s.log.Debug("forward ack", "call_id", r.CallID(), "error", err)
	}
	s.acks.acked(r.CallID())
}
