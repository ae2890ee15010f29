package api

import (
	"context"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/routr-go/routr/internal/apipb/aclpb"
	"github.com/routr-go/routr/internal/apipb/agentspb"
	"github.com/routr-go/routr/internal/apipb/credentialspb"
	"github.com/routr-go/routr/internal/apipb/domainspb"
	"github.com/routr-go/routr/internal/apipb/numberspb"
	"github.com/routr-go/routr/internal/apipb/peerspb"
	"github.com/routr-go/routr/internal/apipb/trunkspb"
	"github.com/routr-go/routr/internal/resources"
	"github.com/routr-go/routr/internal/store"
)

// apiVersion is what every response carries, as Routr's API does.
const apiVersion = "v2"

// seconds is t as Routr's int32 Unix seconds (0 for the zero time).
func seconds(t time.Time) int32 {
	if t.IsZero() {
		return 0
	}
	return int32(t.Unix())
}

// toStruct converts extended to a Struct; nil when empty or not
// representable (it came from a file and holds non-JSON values).
func toStruct(m map[string]any) *structpb.Struct {
	if len(m) == 0 {
		return nil
	}
	s, err := structpb.NewStruct(m)
	if err != nil {
		return nil
	}
	return s
}

// fromStruct is the inverse of toStruct.
func fromStruct(s *structpb.Struct) map[string]any {
	if s == nil || len(s.GetFields()) == 0 {
		return nil
	}
	return s.AsMap()
}

// resolver looks up the resources a response nests (an Agent's Domain and
// Credentials, ...), once each per response. A dangling reference (the
// store does not allow one, but a concurrent delete may race) is left out.
type resolver struct {
	ctx   context.Context
	st    store.Store
	cache map[string]*store.Record
}

func newResolver(ctx context.Context, st store.Store) *resolver {
	return &resolver{ctx: ctx, st: st, cache: make(map[string]*store.Record)}
}

func (rv *resolver) get(kind resources.Kind, ref string) *store.Record {
	if ref == "" {
		return nil
	}
	k := string(kind) + "\x00" + ref
	if r, ok := rv.cache[k]; ok {
		return r
	}
	rec, err := rv.st.Get(rv.ctx, kind, ref)
	var p *store.Record
	if err == nil {
		p = &rec
	}
	rv.cache[k] = p
	return p
}

func (rv *resolver) acl(ref string) *aclpb.AccessControlList {
	if r := rv.get(resources.KindACL, ref); r != nil {
		return rv.aclPB(*r)
	}
	return nil
}

func (rv *resolver) credentials(ref string) *credentialspb.Credentials {
	if r := rv.get(resources.KindCredentials, ref); r != nil {
		return rv.credentialsPB(*r)
	}
	return nil
}

func (rv *resolver) trunk(ref string) *trunkspb.Trunk {
	if r := rv.get(resources.KindTrunk, ref); r != nil {
		return rv.trunkPB(*r)
	}
	return nil
}

func (rv *resolver) number(ref string) *numberspb.Number {
	if r := rv.get(resources.KindNumber, ref); r != nil {
		return rv.numberPB(*r)
	}
	return nil
}

func (rv *resolver) domain(ref string) *domainspb.Domain {
	if r := rv.get(resources.KindDomain, ref); r != nil {
		return rv.domainPB(*r)
	}
	return nil
}

func (*resolver) aclPB(rec store.Record) *aclpb.AccessControlList {
	x, ok := rec.Resource.(*resources.AccessControlList)
	if !ok {
		return nil
	}
	return &aclpb.AccessControlList{
		ApiVersion: apiVersion,
		Ref:        x.Ref,
		Name:       x.Name,
		Allow:      x.Allow,
		Deny:       x.Deny,
		CreatedAt:  seconds(rec.CreatedAt),
		UpdatedAt:  seconds(rec.UpdatedAt),
		Extended:   toStruct(x.Extended),
	}
}

func (*resolver) credentialsPB(rec store.Record) *credentialspb.Credentials {
	x, ok := rec.Resource.(*resources.Credentials)
	if !ok {
		return nil
	}
	return &credentialspb.Credentials{
		ApiVersion: apiVersion,
		Ref:        x.Ref,
		Name:       x.Name,
		Username:   x.Username,
		Password:   x.Password,
		CreatedAt:  seconds(rec.CreatedAt),
		UpdatedAt:  seconds(rec.UpdatedAt),
		Extended:   toStruct(x.Extended),
	}
}

func (rv *resolver) trunkPB(rec store.Record) *trunkspb.Trunk {
	x, ok := rec.Resource.(*resources.Trunk)
	if !ok {
		return nil
	}
	t := &trunkspb.Trunk{
		ApiVersion:          apiVersion,
		Ref:                 x.Ref,
		Name:                x.Name,
		SendRegister:        x.SendRegister,
		InboundUri:          x.InboundURI,
		CreatedAt:           seconds(rec.CreatedAt),
		UpdatedAt:           seconds(rec.UpdatedAt),
		AccessControlList:   rv.acl(x.AccessControlListRef),
		InboundCredentials:  rv.credentials(x.InboundCredentialsRef),
		OutboundCredentials: rv.credentials(x.OutboundCredentialsRef),
		Extended:            toStruct(x.Extended),
	}
	for _, u := range x.URIs {
		t.Uris = append(t.Uris, &trunkspb.TrunkURI{
			Host: u.Host, Port: int32(u.Port), Transport: strings.ToUpper(u.Transport), User: u.User,
			Weight: int32(u.Weight), Priority: int32(u.Priority), Enabled: u.Enabled,
		})
	}
	return t
}

func (rv *resolver) numberPB(rec store.Record) *numberspb.Number {
	x, ok := rec.Resource.(*resources.Number)
	if !ok {
		return nil
	}
	n := &numberspb.Number{
		ApiVersion:            apiVersion,
		Ref:                   x.Ref,
		Name:                  x.Name,
		TelUrl:                x.TelURL,
		AorLink:               x.AORLink,
		City:                  x.City,
		Country:               x.Country,
		CountryIsoCode:        x.CountryISOCode,
		SessionAffinityHeader: x.SessionAffinityHeader,
		CreatedAt:             seconds(rec.CreatedAt),
		UpdatedAt:             seconds(rec.UpdatedAt),
		Trunk:                 rv.trunk(x.TrunkRef),
		Extended:              toStruct(x.Extended),
	}
	for _, h := range x.ExtraHeaders {
		n.ExtraHeaders = append(n.ExtraHeaders, &numberspb.ExtraHeader{Name: h.Name, Value: h.Value})
	}
	return n
}

func (rv *resolver) domainPB(rec store.Record) *domainspb.Domain {
	x, ok := rec.Resource.(*resources.Domain)
	if !ok {
		return nil
	}
	d := &domainspb.Domain{
		ApiVersion:        apiVersion,
		Ref:               x.Ref,
		Name:              x.Name,
		DomainUri:         x.DomainURI,
		CreatedAt:         seconds(rec.CreatedAt),
		UpdatedAt:         seconds(rec.UpdatedAt),
		AccessControlList: rv.acl(x.AccessControlListRef),
		Extended:          toStruct(x.Extended),
	}
	for _, e := range x.EgressPolicies {
		d.EgressPolicies = append(d.EgressPolicies, &domainspb.EgressPolicy{Rule: e.Rule, NumberRef: e.NumberRef, Number: rv.number(e.NumberRef)})
	}
	return d
}

func (rv *resolver) agentPB(rec store.Record) *agentspb.Agent {
	x, ok := rec.Resource.(*resources.Agent)
	if !ok {
		return nil
	}
	return &agentspb.Agent{
		ApiVersion:  apiVersion,
		Ref:         x.Ref,
		Name:        x.Name,
		Username:    x.Username,
		Privacy:     privacyPB(x.Privacy),
		Enabled:     x.Enabled,
		CreatedAt:   seconds(rec.CreatedAt),
		UpdatedAt:   seconds(rec.UpdatedAt),
		Domain:      rv.domain(x.DomainRef),
		Credentials: rv.credentials(x.CredentialsRef),
		Extended:    toStruct(x.Extended),
		MaxContacts: int32(x.MaxContacts),
		Expires:     int32(x.Expires),
	}
}

func (rv *resolver) peerPB(rec store.Record) *peerspb.Peer {
	x, ok := rec.Resource.(*resources.Peer)
	if !ok {
		return nil
	}
	return &peerspb.Peer{
		ApiVersion:          apiVersion,
		Ref:                 x.Ref,
		Name:                x.Name,
		Username:            x.Username,
		Aor:                 x.AOR,
		ContactAddr:         x.ContactAddr,
		BalancingAlgorithm:  balancingPB(x.BalancingAlgorithm),
		WithSessionAffinity: x.WithSessionAffinity,
		Enabled:             x.Enabled,
		CreatedAt:           seconds(rec.CreatedAt),
		UpdatedAt:           seconds(rec.UpdatedAt),
		AccessControlList:   rv.acl(x.AccessControlListRef),
		Credentials:         rv.credentials(x.CredentialsRef),
		Extended:            toStruct(x.Extended),
		MaxContacts:         int32(x.MaxContacts),
		Expires:             int32(x.Expires),
	}
}

func privacyPB(p resources.Privacy) agentspb.Privacy {
	if p == resources.PrivacyPrivate {
		return agentspb.Privacy_PRIVATE
	}
	return agentspb.Privacy_NONE
}

func balancingPB(a resources.BalancingAlgorithm) peerspb.LoadBalancingAlgorithm {
	switch a {
	case resources.RoundRobin:
		return peerspb.LoadBalancingAlgorithm_ROUND_ROBIN
	case resources.LeastSessions:
		return peerspb.LoadBalancingAlgorithm_LEAST_SESSIONS
	}
	return peerspb.LoadBalancingAlgorithm_UNSPECIFIED
}

func balancing(a peerspb.LoadBalancingAlgorithm) resources.BalancingAlgorithm {
	switch a {
	case peerspb.LoadBalancingAlgorithm_ROUND_ROBIN:
		return resources.RoundRobin
	case peerspb.LoadBalancingAlgorithm_LEAST_SESSIONS:
		return resources.LeastSessions
	}
	return ""
}

func trunkURIs(us []*trunkspb.TrunkURI) []resources.TrunkURI {
	out := make([]resources.TrunkURI, 0, len(us))
	for _, u := range us {
		// enabled is false on the wire both when set false and when not
		// set; Routr stores such a URI as enabled, and so do we.
		out = append(out, resources.TrunkURI{
			User: u.GetUser(), Host: u.GetHost(), Port: int(u.GetPort()), Transport: strings.ToLower(u.GetTransport()),
			Priority: int(u.GetPriority()), Weight: int(u.GetWeight()), Enabled: true,
		})
	}
	return out
}

func egressPolicies(ps []*domainspb.EgressPolicy) []resources.EgressPolicy {
	out := make([]resources.EgressPolicy, 0, len(ps))
	for _, p := range ps {
		out = append(out, resources.EgressPolicy{Rule: p.GetRule(), NumberRef: p.GetNumberRef()})
	}
	return out
}

func extraHeaders(hs []*numberspb.ExtraHeader) []resources.ExtraHeader {
	out := make([]resources.ExtraHeader, 0, len(hs))
	for _, h := range hs {
		out = append(out, resources.ExtraHeader{Name: h.GetName(), Value: h.GetValue()})
	}
	return out
}
