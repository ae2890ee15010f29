package edge

import (
	"github.com/routr-go/routr/internal/resources"
)

// registerPeer registers an instance of a peer: it authenticates with the
// peer's credentials in the realm the REGISTER names (its To host), and
// its binding is stored under the peer's aor, as Routr does, so that
// several instances of one peer share one address of record.
func (s *Server) registerPeer(r *Request, realm string, p *resources.Peer) {
	if p.ACL != nil && !p.ACL.Allows(r.Src.Addr()) {
		s.registrations("rejected")
		s.reply(r, 403, "Forbidden")
		return
	}
	var cred *resources.Credentials
	if p.Enabled {
		cred = p.Credentials
	}
	if !s.authenticateWith(r, registrarAuth, realm, cred) {
		return
	}
	s.storeBindings(r, p.AOR, p.MaxContacts)
}
