package edge

import (
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/routr-go/routr/internal/auth"
	"github.com/routr-go/routr/internal/resources"
)

// dummyPassword is verified against when the user is unknown, so that an
// unknown user and a wrong password cost the same and get the same answer.
const dummyPassword = "\x00routr-go-no-such-user\x00"

// authKind selects the registrar (401, WWW-Authenticate, Authorization) or
// proxy (407, Proxy-Authenticate, Proxy-Authorization) flavour of digest.
type authKind struct {
	status        int
	reason        string
	challengeName string
	answerName    string
}

var (
	registrarAuth = authKind{401, "Unauthorized", "WWW-Authenticate", "Authorization"}
	proxyAuth     = authKind{407, "Proxy Authentication Required", "Proxy-Authenticate", "Proxy-Authorization"}
)

// authenticate checks that r carries digest credentials of agent in
// domain d. When it does not, authenticate answers r (challenge, stale
// challenge or 403) and returns false. agent may be nil (unknown user): the
// caller still gets a challenge and then the same 403 as a wrong password.
func (s *Server) authenticate(r *Request, k authKind, d *resources.Domain, agent *resources.Agent) bool {
	var cred *resources.Credentials
	if agent != nil && agent.Enabled {
		cred = s.opts.Resources.Load().Credentials(agent.CredentialsRef)
	}
	return s.authenticateWith(r, k, d.DomainURI, cred)
}

// authenticateWith checks that r carries digest credentials for realm
// that match cred, and answers r when it does not, as authenticate does.
// cred may be nil (nobody to authenticate as): the answer is then the same
// as for a wrong password.
func (s *Server) authenticateWith(r *Request, k authKind, realm string, cred *resources.Credentials) bool {
	var (
		got   auth.Credentials
		found bool
	)
	for _, h := range r.Headers() {
		if !strings.EqualFold(h.Name(), k.answerName) {
			continue
		}
		c, err := auth.ParseCredentials(h.Value())
		if err == nil && c.Realm == realm {
			got, found = c, true
			break
		}
	}
	if !found {
		s.challenge(r, k, realm, false)
		return false
	}
	// A user under an authentication ban gets 403 whatever it answers,
	// so a password guesser learns nothing more.
	user := got.Username + "@" + realm
	if s.guard.userBanned(user) {
		s.metrics.authFailMethod.inc(r.Method)
		s.reply(r, 403, "Forbidden")
		return false
	}

	password, username := dummyPassword, ""
	if cred != nil {
		password, username = cred.Password, cred.Username
	}
	res := s.opts.Auth.Verify(got, string(r.Method), realm, password)
	switch {
	case res == auth.Stale:
		s.challenge(r, k, realm, true)
		return false
	case res == auth.OK && username != "" && got.Username == username:
		return true
	default:
		s.metrics.authFailMethod.inc(r.Method)
		s.guard.authFailed(r.Src.Addr(), user)
		s.reply(r, 403, "Forbidden")
		return false
	}
}

func (s *Server) challenge(r *Request, k authKind, realm string, stale bool) {
	values := s.opts.Auth.Challenge(realm, stale)
	hdrs := make([]sip.Header, 0, len(values))
	for _, v := range values {
		hdrs = append(hdrs, sip.NewHeader(k.challengeName, v))
	}
	s.reply(r, k.status, k.reason, hdrs...)
}
