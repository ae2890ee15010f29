package edge

import "github.com/emiago/sipgo/sip"

// sipgo's Clone copies every header of a message (a parsed Via, From, To,
// Contact... each a new allocation with its parameters) and formats the
// destination with fmt.Sprintf, though the proxy changes only a few
// headers and sets the destination itself: that was ~8% of the edge's
// CPU per call. These copies share the header values with the message
// they copy, except the ones the proxy changes in place, which are the
// copy's own. Every other header must be replaced or removed in the copy,
// never changed: the received request still belongs to its server
// transaction (100 Trying, 487, the response cache), the received
// response to its client transaction.

// copyRequest returns a copy of req for forwarding: its own header list,
// top Via (received, rport) and Contact (fixNATContact), sharing every
// other header value and the body with req.
func copyRequest(req *sip.Request) *sip.Request {
	out := sip.NewRequest(req.Method, req.Recipient)
	out.SipVersion = req.SipVersion
	topVia := req.Via()
	contact := req.Contact()
	for _, h := range req.Headers() {
		switch v := h.(type) {
		case *sip.ViaHeader:
			if v == topVia {
				h = v.Clone()
			}
		case *sip.ContactHeader:
			if v == contact {
				h = v.Clone()
			}
		}
		out.AppendHeader(h)
	}
	out.SetBody(req.Body())
	out.SetTransport(req.Transport())
	out.SetSource(req.Source())
	return out
}

// copyResponse returns a copy of res for relaying: its own header list
// and Contact (fixNATContact), sharing every other header value and the
// body with res.
func copyResponse(res *sip.Response) *sip.Response {
	out := sip.NewResponse(res.StatusCode, res.Reason)
	out.SipVersion = res.SipVersion
	contact := res.Contact()
	for _, h := range res.Headers() {
		if c, ok := h.(*sip.ContactHeader); ok && c == contact {
			h = c.Clone()
		}
		out.AppendHeader(h)
	}
	out.SetBody(res.Body())
	out.SetTransport(res.Transport())
	out.SetSource(res.Source())
	return out
}
