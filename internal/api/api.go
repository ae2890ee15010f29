// Package api provides routr-go's management API: Routr v2's v2beta1
// services (Agents, Domains, Numbers, Peers, Trunks, ACLService,
// CredentialsService) over gRPC, gRPC-Web and Connect HTTP/JSON on one
// port, backed by a store.Store, with API keys checked on every call and
// an audit log line for every change.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/routr-go/routr/internal/apipb/aclpb/aclpbconnect"
	"github.com/routr-go/routr/internal/apipb/agentspb/agentspbconnect"
	"github.com/routr-go/routr/internal/apipb/credentialspb/credentialspbconnect"
	"github.com/routr-go/routr/internal/apipb/domainspb/domainspbconnect"
	"github.com/routr-go/routr/internal/apipb/numberspb/numberspbconnect"
	"github.com/routr-go/routr/internal/apipb/peerspb/peerspbconnect"
	"github.com/routr-go/routr/internal/apipb/trunkspb/trunkspbconnect"
	"github.com/routr-go/routr/internal/resources"
	"github.com/routr-go/routr/internal/store"
)

// MaxRequestBytes bounds a request body; a larger one is refused with
// ResourceExhausted before it is decoded.
const MaxRequestBytes = 1 << 20

// Options configures a Server.
type Options struct {
	// Store holds the resources and the API keys.
	Store store.Store
	// Logger receives errors and the audit lines; nil means slog.Default().
	Logger *slog.Logger
	// Registerer receives the API's metrics; nil means none.
	Registerer prometheus.Registerer
	// CORSOrigins are the browser origins allowed to call the API ("*"
	// for any); none means no CORS.
	CORSOrigins []string
	// TrustedNetworks may call without a key (a key they do send must
	// still be valid); none means every call needs a key.
	TrustedNetworks []netip.Prefix
}

// Server implements the management API services.
type Server struct {
	st       store.Store
	origins  []string
	trusted  []netip.Prefix
	log      *slog.Logger
	auditLog *slog.Logger // log, but at info whatever its level
	m        *metrics
}

// New returns a Server on o.Store.
func New(o Options) *Server {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Server{st: o.Store, origins: o.CORSOrigins, trusted: o.TrustedNetworks, log: log, auditLog: slog.New(auditHandler{log.Handler()}), m: newMetrics(o.Registerer)}
}

// Handler returns the HTTP handler serving every service, behind the API
// key check.
func (s *Server) Handler() http.Handler {
	opts := []connect.HandlerOption{connect.WithReadMaxBytes(MaxRequestBytes), connect.WithInterceptors(s.m.interceptor())}
	mux := http.NewServeMux()
	mux.Handle(aclpbconnect.NewACLServiceHandler(aclService{s}, opts...))
	mux.Handle(agentspbconnect.NewAgentsHandler(agentService{s}, opts...))
	mux.Handle(credentialspbconnect.NewCredentialsServiceHandler(credentialsService{s}, opts...))
	mux.Handle(domainspbconnect.NewDomainsHandler(domainService{s}, opts...))
	mux.Handle(numberspbconnect.NewNumbersHandler(numberService{s}, opts...))
	mux.Handle(peerspbconnect.NewPeersHandler(peerService{s}, opts...))
	mux.Handle(trunkspbconnect.NewTrunksHandler(trunkService{s}, opts...))
	return cors(s.origins, s.authenticate(mux, func(path string) bool { return slices.Contains(procedures, path) }))
}

// procedures lists every procedure the API serves.
var procedures = []string{
	aclpbconnect.ACLServiceCreateProcedure, aclpbconnect.ACLServiceUpdateProcedure, aclpbconnect.ACLServiceGetProcedure, aclpbconnect.ACLServiceDeleteProcedure, aclpbconnect.ACLServiceListProcedure,
	credentialspbconnect.CredentialsServiceCreateProcedure, credentialspbconnect.CredentialsServiceUpdateProcedure, credentialspbconnect.CredentialsServiceGetProcedure, credentialspbconnect.CredentialsServiceDeleteProcedure, credentialspbconnect.CredentialsServiceListProcedure,
	domainspbconnect.DomainsCreateProcedure, domainspbconnect.DomainsUpdateProcedure, domainspbconnect.DomainsGetProcedure, domainspbconnect.DomainsDeleteProcedure, domainspbconnect.DomainsListProcedure, domainspbconnect.DomainsFindByProcedure,
	agentspbconnect.AgentsCreateProcedure, agentspbconnect.AgentsUpdateProcedure, agentspbconnect.AgentsGetProcedure, agentspbconnect.AgentsDeleteProcedure, agentspbconnect.AgentsListProcedure, agentspbconnect.AgentsFindByProcedure,
	numberspbconnect.NumbersCreateProcedure, numberspbconnect.NumbersUpdateProcedure, numberspbconnect.NumbersGetProcedure, numberspbconnect.NumbersDeleteProcedure, numberspbconnect.NumbersListProcedure, numberspbconnect.NumbersFindByProcedure,
	peerspbconnect.PeersCreateProcedure, peerspbconnect.PeersUpdateProcedure, peerspbconnect.PeersGetProcedure, peerspbconnect.PeersDeleteProcedure, peerspbconnect.PeersListProcedure, peerspbconnect.PeersFindByProcedure,
	trunkspbconnect.TrunksCreateProcedure, trunkspbconnect.TrunksUpdateProcedure, trunkspbconnect.TrunksGetProcedure, trunkspbconnect.TrunksDeleteProcedure, trunkspbconnect.TrunksListProcedure, trunkspbconnect.TrunksFindByProcedure,
}

// errorf maps an error from the store to a Connect error with the code a
// client can act on. Errors the client cannot fix are logged and answered
// with Internal (or Unavailable when the store is closed) without detail.
func (s *Server) errorf(op string, kind resources.Kind, ref string, err error) error {
	var ve *resources.ValidationError
	switch {
	case errors.As(err, &ve):
		return connect.NewError(connect.CodeInvalidArgument, errors.New(problems(ve)))
	case errors.Is(err, store.ErrAlreadyExists):
		return connect.NewError(connect.CodeAlreadyExists, fmt.Errorf("%s %q already exists", kind, ref))
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrKindMismatch):
		return connect.NewError(connect.CodeNotFound, fmt.Errorf("%s %q not found", kind, ref))
	case errors.Is(err, store.ErrReferenced):
		return connect.NewError(connect.CodeFailedPrecondition, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeCanceled, err)
	case errors.Is(err, store.ErrClosed):
		return connect.NewError(connect.CodeUnavailable, errors.New("store closed"))
	}
	s.log.Error("api", "op", op, "kind", kind, "ref", ref, "error", err)
	return connect.NewError(connect.CodeInternal, fmt.Errorf("%s %s: internal error", op, kind))
}

// problems joins a validation error's problems on one line each, without
// file positions (an API request has none).
func problems(ve *resources.ValidationError) string {
	lines := make([]string, len(ve.Problems))
	for i, p := range ve.Problems {
		p.File, p.Line = "", 0
		lines[i] = p.String()
	}
	return strings.Join(lines, "; ")
}

// invalid is an InvalidArgument error about a request field.
func invalid(field, format string, args ...any) error {
	return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf(field+": "+format, args...))
}
