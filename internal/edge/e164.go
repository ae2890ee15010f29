package edge

import (
	"github.com/emiago/sipgo/sip"

	"github.com/routr-go/routr/internal/routing"
)

// e164 is routing.E164 with the edge's setting, the number only.
func (s *Server) e164(user string) string {
	out, _ := routing.E164(user, s.opts.EnforceE164MobilePrefix)
	return out
}

// enforceE164 rewrites the users of the Request-URI, From and To of a
// request being forwarded as E.164 numbers where they read as such, as
// Routr does under ENFORCE_E164. The caller was identified by the From
// user as received. From and To are replaced, not changed in place, since
// a clone may share them with the received request.
func (s *Server) enforceE164(req *sip.Request) {
	req.Recipient.User = s.e164(req.Recipient.User)
	if f := req.From(); f != nil {
		if u := s.e164(f.Address.User); u != f.Address.User {
			addr := *f.Address.Clone()
			addr.User = u
			req.ReplaceHeader(&sip.FromHeader{DisplayName: f.DisplayName, Address: addr, Params: f.Params.Clone()})
		}
	}
	if t := req.To(); t != nil {
		if u := s.e164(t.Address.User); u != t.Address.User {
			addr := *t.Address.Clone()
			addr.User = u
			req.ReplaceHeader(&sip.ToHeader{DisplayName: t.DisplayName, Address: addr, Params: t.Params.Clone()})
		}
	}
}
