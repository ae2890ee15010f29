package api

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/routr-go/routr/internal/resources"
	"github.com/routr-go/routr/internal/store"
)

// audit logs one change: who (API key, client certificate, address), what
// and which resource.
func (s *Server) audit(ctx context.Context, action string, kind resources.Kind, ref string) {
	c := callerFrom(ctx)
	attrs := []any{"action", action, "kind", kind, "ref", ref, "key_id", c.KeyID, "key_name", c.KeyName, "addr", c.Addr}
	if c.Cert != "" {
		attrs = append(attrs, "cert", c.Cert)
	}
	if c.Trusted {
		attrs = append(attrs, "trusted_network", true)
	}
	s.auditLog.Info("audit", attrs...)
}

func (s *Server) create(ctx context.Context, r resources.Resource) (store.Record, error) {
	b := r.Meta()
	b.APIVersion = "v2"
	if err := checkExtended(b.Extended); err != nil {
		return store.Record{}, err
	}
	rec, err := s.st.Create(ctx, r)
	if err != nil {
		return rec, s.errorf("create", b.Kind, b.Ref, err)
	}
	s.audit(ctx, "create", b.Kind, rec.Resource.Meta().Ref)
	return rec, nil
}

// update reads the stored resource, lets merge copy the request's set
// fields onto it, and stores the result.
func (s *Server) update(ctx context.Context, kind resources.Kind, ref string, merge func(resources.Resource) error) (store.Record, error) {
	if ref == "" {
		return store.Record{}, invalid("ref", "required")
	}
	old, err := s.st.Get(ctx, kind, ref)
	if err != nil {
		return old, s.errorf("update", kind, ref, err)
	}
	if err := merge(old.Resource); err != nil {
		return old, err
	}
	if err := checkExtended(old.Resource.Meta().Extended); err != nil {
		return old, err
	}
	rec, err := s.st.Update(ctx, old.Resource)
	if err != nil {
		return rec, s.errorf("update", kind, ref, err)
	}
	s.audit(ctx, "update", kind, ref)
	return rec, nil
}

func (s *Server) get(ctx context.Context, kind resources.Kind, ref string) (store.Record, error) {
	if ref == "" {
		return store.Record{}, invalid("ref", "required")
	}
	rec, err := s.st.Get(ctx, kind, ref)
	if err != nil {
		return rec, s.errorf("get", kind, ref, err)
	}
	return rec, nil
}

func (s *Server) delete(ctx context.Context, kind resources.Kind, ref string) error {
	if ref == "" {
		return invalid("ref", "required")
	}
	if err := s.st.Delete(ctx, kind, ref); err != nil {
		return s.errorf("delete", kind, ref, err)
	}
	s.audit(ctx, "delete", kind, ref)
	return nil
}

func (s *Server) list(ctx context.Context, kind resources.Kind, pageSize int32, pageToken string) ([]store.Record, string, error) {
	if pageSize < 0 {
		return nil, "", invalid("pageSize", "must not be negative")
	}
	recs, next, err := s.st.List(ctx, kind, int(pageSize), pageToken)
	if err != nil {
		return nil, "", s.errorf("list", kind, "", err)
	}
	return recs, next, nil
}

// checkExtended refuses what a Struct can carry but JSON cannot: NaN and
// infinite numbers (binary protobuf can send them).
func checkExtended(m map[string]any) error {
	var walk func(v any) bool
	walk = func(v any) bool {
		switch x := v.(type) {
		case float64:
			return !math.IsNaN(x) && !math.IsInf(x, 0)
		case map[string]any:
			for _, e := range x {
				if !walk(e) {
					return false
				}
			}
		case []any:
			for _, e := range x {
				if !walk(e) {
					return false
				}
			}
		}
		return true
	}
	if !walk(m) {
		return invalid("extended", "numbers must be finite (no NaN or Infinity)")
	}
	return nil
}

// maxFindBy bounds how many resources FindBy returns.
const maxFindBy = 1000

// findBy returns the resources of kind whose field (Routr's camelCase
// name, as in Routr's FindBy) equals value, scanning the list page by
// page.
func (s *Server) findBy(ctx context.Context, kind resources.Kind, field, value string) ([]store.Record, error) {
	fields := findFields[kind]
	get, ok := fields[field]
	if !ok {
		names := make([]string, 0, len(fields))
		for n := range fields {
			names = append(names, n)
		}
		slices.Sort(names)
		return nil, invalid("fieldName", "%s cannot be searched by %q; use one of %s", kind, field, strings.Join(names, ", "))
	}
	var out []store.Record
	token := ""
	for {
		recs, next, err := s.st.List(ctx, kind, 1000, token)
		if err != nil {
			return nil, s.errorf("findBy", kind, "", err)
		}
		for _, r := range recs {
			if get(r.Resource) == value {
				out = append(out, r)
				if len(out) == maxFindBy {
					return out, nil
				}
			}
		}
		if next == "" || len(recs) == 0 {
			return out, nil
		}
		token = next
	}
}

// findFields lists, per kind, the fields FindBy accepts and how to read
// each as the string Routr compares (booleans as "true"/"false").
var findFields = map[resources.Kind]map[string]func(resources.Resource) string{
	resources.KindAgent: withBase(map[string]func(resources.Resource) string{
		"username":       func(r resources.Resource) string { return r.(*resources.Agent).Username },
		"domainRef":      func(r resources.Resource) string { return r.(*resources.Agent).DomainRef },
		"credentialsRef": func(r resources.Resource) string { return r.(*resources.Agent).CredentialsRef },
		"enabled":        func(r resources.Resource) string { return strconv.FormatBool(r.(*resources.Agent).Enabled) },
		"privacy":        func(r resources.Resource) string { return strings.ToUpper(string(r.(*resources.Agent).Privacy)) },
	}),
	resources.KindDomain: withBase(map[string]func(resources.Resource) string{
		"domainUri":            func(r resources.Resource) string { return r.(*resources.Domain).DomainURI },
		"accessControlListRef": func(r resources.Resource) string { return r.(*resources.Domain).AccessControlListRef },
	}),
	resources.KindNumber: withBase(map[string]func(resources.Resource) string{
		"telUrl":         func(r resources.Resource) string { return r.(*resources.Number).TelURL },
		"aorLink":        func(r resources.Resource) string { return r.(*resources.Number).AORLink },
		"trunkRef":       func(r resources.Resource) string { return r.(*resources.Number).TrunkRef },
		"city":           func(r resources.Resource) string { return r.(*resources.Number).City },
		"country":        func(r resources.Resource) string { return r.(*resources.Number).Country },
		"countryIsoCode": func(r resources.Resource) string { return r.(*resources.Number).CountryISOCode },
	}),
	resources.KindPeer: withBase(map[string]func(resources.Resource) string{
		"username":             func(r resources.Resource) string { return r.(*resources.Peer).Username },
		"aor":                  func(r resources.Resource) string { return r.(*resources.Peer).AOR },
		"contactAddr":          func(r resources.Resource) string { return r.(*resources.Peer).ContactAddr },
		"credentialsRef":       func(r resources.Resource) string { return r.(*resources.Peer).CredentialsRef },
		"accessControlListRef": func(r resources.Resource) string { return r.(*resources.Peer).AccessControlListRef },
		"enabled":              func(r resources.Resource) string { return strconv.FormatBool(r.(*resources.Peer).Enabled) },
	}),
	resources.KindTrunk: withBase(map[string]func(resources.Resource) string{
		"inboundUri":             func(r resources.Resource) string { return r.(*resources.Trunk).InboundURI },
		"accessControlListRef":   func(r resources.Resource) string { return r.(*resources.Trunk).AccessControlListRef },
		"inboundCredentialsRef":  func(r resources.Resource) string { return r.(*resources.Trunk).InboundCredentialsRef },
		"outboundCredentialsRef": func(r resources.Resource) string { return r.(*resources.Trunk).OutboundCredentialsRef },
		"sendRegister":           func(r resources.Resource) string { return strconv.FormatBool(r.(*resources.Trunk).SendRegister) },
	}),
}

func withBase(m map[string]func(resources.Resource) string) map[string]func(resources.Resource) string {
	m["ref"] = func(r resources.Resource) string { return r.Meta().Ref }
	m["name"] = func(r resources.Resource) string { return r.Meta().Name }
	return m
}

// kindOf asserts r's concrete type, so that a store returning another kind
// than asked is an error rather than a panic.
func kindOf[T resources.Resource](r resources.Resource) (T, error) {
	x, ok := r.(T)
	if !ok {
		var zero T
		return zero, fmt.Errorf("store returned %T, want %T", r, zero)
	}
	return x, nil
}
