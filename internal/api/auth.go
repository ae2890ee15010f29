package api

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/netip"
	"strings"

	"connectrpc.com/connect"

	"github.com/routr-go/routr/internal/store"
)

// Caller identifies who made a request, for the audit log.
type Caller struct {
	// KeyID and KeyName are the API key's.
	KeyID, KeyName string
	// Cert is the subject of the client certificate, when one was given.
	Cert string
	// Addr is the client's network address.
	Addr string
	// Trusted is true for a call without a key from API_TRUSTED_NETWORKS.
	Trusted bool
}

type callerKey struct{}

// callerFrom returns the request's caller, set by authenticate.
func callerFrom(ctx context.Context) Caller {
	c, _ := ctx.Value(callerKey{}).(Caller)
	return c
}

// apiKey returns the key a request carries in any of the accepted headers:
//
//	x-api-key: <key>
//	authorization: Bearer <key>
//	authorization: Basic base64(<anything>:<key>)
//
// The last form lets Routr's SDK, which sends its username and password
// as Basic credentials, authenticate with a key as its password.
func apiKey(h http.Header) string {
	if k := strings.TrimSpace(h.Get("X-Api-Key")); k != "" {
		return k
	}
	a := strings.TrimSpace(h.Get("Authorization"))
	scheme, rest, ok := strings.Cut(a, " ")
	if !ok {
		return ""
	}
	rest = strings.TrimSpace(rest)
	switch strings.ToLower(scheme) {
	case "bearer":
		return rest
	case "basic":
		raw, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return ""
		}
		_, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return ""
		}
		return pass
	}
	return ""
}

// authenticate refuses, before its body is read, any request without a
// valid API key, answering Unauthenticated in the request's own protocol
// (gRPC, gRPC-Web or Connect).
func (s *Server) authenticate(next http.Handler, known func(string) bool) http.Handler {
	ew := connect.NewErrorWriter()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fail := func(code connect.Code, msg string) {
			s.m.refused(r, code, known)
			if !ew.IsSupported(r) {
				http.Error(w, msg, http.StatusUnsupportedMediaType)
				return
			}
			_ = ew.Write(w, r, connect.NewError(code, errors.New(msg)))
		}
		key := apiKey(r.Header)
		if key == "" && s.fromTrusted(r) {
			c := Caller{Addr: r.RemoteAddr, Trusted: true}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
			return
		}
		if key == "" {
			fail(connect.CodeUnauthenticated, "missing API key: send it as x-api-key: <key>, authorization: Bearer <key>, or as the password of Basic credentials")
			return
		}
		k, err := s.st.CheckAPIKey(r.Context(), key)
		if err != nil {
			if errors.Is(err, store.ErrUnauthenticated) || errors.Is(err, store.ErrNotFound) {
				s.log.Warn("api: invalid API key", "addr", r.RemoteAddr, "procedure", r.URL.Path)
				fail(connect.CodeUnauthenticated, "invalid API key")
				return
			}
			s.log.Error("api: checking API key", "error", err)
			fail(connect.CodeUnavailable, "cannot check the API key now")
			return
		}
		c := Caller{KeyID: k.ID, KeyName: k.Name, Addr: r.RemoteAddr}
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			c.Cert = r.TLS.PeerCertificates[0].Subject.String()
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	})
}

// fromTrusted reports whether r comes from API_TRUSTED_NETWORKS. The
// address is the TCP peer's: behind a proxy, that is the proxy.
func (s *Server) fromTrusted(r *http.Request) bool {
	if len(s.trusted) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap()
	for _, p := range s.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
