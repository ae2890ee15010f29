package edge

import (
	"net"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// strayResponse handles a response that matches no client transaction
// (RFC 3261 16.7 step 2 has a proxy forward those statelessly): a 2xx to
// an INVITE whose transactions already ended at the ACK (see ackGate),
// retransmitted by a callee whose ACK was lost, goes to the caller by the
// next Via, so that the caller ACKs again. Anything else is dropped: its
// transaction already had its final response, and a late provisional
// response must not follow a final one.
func (s *Server) strayResponse(res *sip.Response) {
	out := s.strayRelay(res)
	if out == nil {
		s.metrics.strayDropped.Inc()
		return
	}
	s.metrics.strayRelayed.Inc()
	s.metrics.relayedByCode.inc(out.StatusCode)
	if err := s.srv.WriteResponse(out); err != nil {
		s.log.Debug("relay stray 2xx", "call_id", callIDOf(out), "error", err)
	}
}

// strayRelay returns what to relay for a stray response, nil to drop it.
func (s *Server) strayRelay(res *sip.Response) *sip.Response {
	if !res.IsSuccess() {
		return nil
	}
	cs := res.CSeq()
	top := res.Via()
	if cs == nil || cs.MethodName != sip.INVITE || top == nil {
		return nil
	}
	if b, _ := top.Params.Get("branch"); !strings.HasPrefix(b, branchMagic) || !s.addrs.isOurs(top.Host, top.Port) {
		return nil
	}
	out := copyResponse(res)
	out.RemoveHeader("Via")
	next := out.Via()
	if next == nil {
		return nil
	}
	out.SetTransport(next.Transport)
	out.SetDestination(viaDest(next))
	return out
}

// viaDest is where a response goes by its Via (RFC 3261 18.2.2, RFC
// 3581): received and rport when the previous hop set them. sipgo's
// Response.Destination derives the same but joins host and port without
// brackets, which breaks IPv6 addresses.
func viaDest(v *sip.ViaHeader) string {
	host := v.Host
	if rcv, ok := v.Params.Get("received"); ok && rcv != "" {
		host = rcv
	}
	port := v.Port
	if rp, ok := v.Params.Get("rport"); ok && rp != "" {
		if n, err := strconv.Atoi(rp); err == nil {
			port = n
		}
	}
	if port == 0 {
		port = sip.DefaultPort(v.Transport)
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), strconv.Itoa(port))
}

func callIDOf(m interface{ CallID() *sip.CallIDHeader }) string {
	if c := m.CallID(); c != nil {
		return c.Value()
	}
	return ""
}
