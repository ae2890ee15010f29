package edge

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

// singleHeaders may appear once in a request (RFC 3261 7.3.1): two To or
// two Call-ID values (RFC 4475 multi01) or two Content-Length values
// (mcl01) leave no way to tell which one the sender meant.
var singleHeaders = []string{"To", "From", "Call-ID", "CSeq", "Max-Forwards", "Content-Length"}

// malformed returns the status for a request sipgo parsed but RFC 3261
// rejects, or 0 when it is well formed enough to process.
func malformed(r *Request) (int, string) {
	if r.SipVersion != "SIP/2.0" {
		// RFC 4475 badvers.
		return 505, "Version Not Supported"
	}
	if name := repeatedSingleHeader(r); name != "" {
		return 400, "Bad Request (multiple " + name + ")"
	}
	switch strings.ToLower(r.Recipient.Scheme) {
	case "sip", "sips", "tel":
	default:
		// RFC 4475 unkscm.
		return 416, "Unsupported URI Scheme"
	}
	if r.Recipient.Headers != nil && r.Recipient.Headers.Length() > 0 {
		// Headers are not allowed in a Request-URI (RFC 3261 19.1.5;
		// RFC 4475 escruri).
		return 400, "Bad Request (Request-URI headers)"
	}
	return 0, ""
}

// repeatedSingleHeader returns the first of singleHeaders that r has
// more than once, or "": one pass over the headers, without allocating.
func repeatedSingleHeader(r *Request) string {
	var seen [6]bool
	for _, h := range r.Headers() {
		name := h.Name()
		for i, single := range singleHeaders {
			if strings.EqualFold(name, single) {
				if seen[i] {
					return single
				}
				seen[i] = true
				break
			}
		}
	}
	return ""
}

// replyMalformed answers like reply but always as SIP/2.0: a response in
// the sender's unknown version (SIP/7.0) would not be understood either.
func (s *Server) replyMalformed(r *Request, code int, reason string) {
	res := sip.NewResponseFromRequest(r.Request, code, reason, nil)
	res.SipVersion = "SIP/2.0"
	res.AppendHeader(sip.NewHeader("Server", s.opts.UserAgent))
	s.respond(r, res)
}
