package edge

import (
	"github.com/routr-go/routr/internal/connect"
)

// verifyConnect checks an X-Connect-Token for r's method. When it does not
// hold, it answers r (500 without a verifier, as Routr does; 403 for a
// bad token or a method the token does not allow) and returns false.
func (s *Server) verifyConnect(r *Request, token string) (*connect.Claims, bool) {
	if s.opts.ConnectVerifier == nil {
		s.log.Warn("X-Connect-Token received but no verifier configured (CONNECT_VERIFIER_PUBLIC_KEY_PATH)")
		s.reply(r, 500, "Server Internal Error")
		return nil, false
	}
	claims, err := s.opts.ConnectVerifier.Verify(token)
	if err != nil || !claims.Allows(string(r.Method)) {
		s.log.Debug("connect token refused", "method", r.Method, "error", err)
		s.metrics.authFailMethod.inc(r.Method)
		s.reply(r, 403, "Forbidden")
		return nil, false
	}
	return claims, true
}

// registerConnect registers an ephemeral agent by its token: its bindings
// go under the token's aor, bounded by its maxContacts, with no digest
// challenge, as Routr does. The domain's ACL still applies.
func (s *Server) registerConnect(r *Request, token string) {
	claims, ok := s.verifyConnect(r, token)
	if !ok {
		s.registrations("rejected")
		return
	}
	if claims.AOR == "" {
		s.registrations("rejected")
		s.reply(r, 403, "Forbidden")
		return
	}
	if d := s.opts.Resources.Load().DomainByURI(claims.Domain); d != nil && d.ACL != nil && !d.ACL.Allows(r.Src.Addr()) {
		s.registrations("rejected")
		s.reply(r, 403, "Forbidden")
		return
	}
	s.storeBindings(r, claims.AOR, claims.MaxContacts)
}
