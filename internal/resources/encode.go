package resources

import (
	"encoding/json"
	"fmt"
)

// Marshal encodes r as one resource in Routr's v2 JSON format (apiVersion,
// kind, ref, metadata, spec, extended), which Parse reads back into an
// equal resource. Empty fields are left out, except those whose absence
// Parse would read as another value (enabled: false). The resolved
// pointers Build sets (Agent.Domain and so on) are not encoded.
func Marshal(r Resource) ([]byte, error) {
	if r == nil || r.Meta() == nil {
		return nil, fmt.Errorf("marshal: nil resource")
	}
	b := r.Meta()
	meta := obj{"name": b.Name, "region": b.Region}
	var kind Kind
	var spec obj
	switch x := r.(type) {
	case *Domain:
		kind = KindDomain
		var eps []any
		for _, e := range x.EgressPolicies {
			eps = append(eps, obj{"rule": e.Rule, "numberRef": e.NumberRef}.compact())
		}
		spec = obj{
			"accessControlListRef": x.AccessControlListRef,
			"context":              obj{"domainUri": x.DomainURI, "egressPolicies": eps}.compact(),
		}
	case *Agent:
		kind = KindAgent
		spec = obj{
			"username":       x.Username,
			"domainRef":      x.DomainRef,
			"credentialsRef": x.CredentialsRef,
			"privacy":        string(x.Privacy),
			"enabled":        x.Enabled,
			"maxContacts":    x.MaxContacts,
			"expires":        x.Expires,
		}
	case *Credentials:
		kind = KindCredentials
		spec = obj{"credentials": obj{"username": x.Username, "password": x.Password}.compact()}
	case *Peer:
		kind = KindPeer
		spec = obj{
			"aor":                  x.AOR,
			"username":             x.Username,
			"contactAddr":          x.ContactAddr,
			"credentialsRef":       x.CredentialsRef,
			"accessControlListRef": x.AccessControlListRef,
			"loadBalancing": obj{
				"algorithm":           string(x.BalancingAlgorithm),
				"withSessionAffinity": x.WithSessionAffinity,
			}.compact(),
			"enabled":     x.Enabled,
			"maxContacts": x.MaxContacts,
			"expires":     x.Expires,
		}
	case *Number:
		kind = KindNumber
		meta["geoInfo"] = obj{"city": x.City, "country": x.Country, "countryIsoCode": x.CountryISOCode}.compact()
		var hs []any
		for _, h := range x.ExtraHeaders {
			hs = append(hs, obj{"name": h.Name, "value": h.Value}.compact())
		}
		spec = obj{
			"trunkRef": x.TrunkRef,
			"location": obj{
				"telUrl":                x.TelURL,
				"aorLink":               x.AORLink,
				"sessionAffinityHeader": x.SessionAffinityHeader,
				"extraHeaders":          hs,
			}.compact(),
		}
	case *Trunk:
		kind = KindTrunk
		var uris []any
		for _, u := range x.URIs {
			uris = append(uris, obj{
				"uri":      obj{"user": u.User, "host": u.Host, "port": u.Port, "transport": u.Transport}.compact(),
				"priority": u.Priority,
				"weight":   u.Weight,
				"enabled":  u.Enabled,
			}.compact())
		}
		spec = obj{
			"inbound": obj{
				"uri":                  x.InboundURI,
				"accessControlListRef": x.AccessControlListRef,
				"credentialsRef":       x.InboundCredentialsRef,
			}.compact(),
			"outbound": obj{
				"sendRegister":   x.SendRegister,
				"credentialsRef": x.OutboundCredentialsRef,
				"uris":           uris,
			}.compact(),
		}
	case *AccessControlList:
		kind = KindACL
		spec = obj{"accessControlList": obj{"allow": strs(x.Allow), "deny": strs(x.Deny)}.compact()}
	default:
		return nil, fmt.Errorf("marshal: unknown resource type %T", r)
	}
	out := obj{
		"apiVersion": b.APIVersion,
		"kind":       string(kind),
		"ref":        b.Ref,
		"metadata":   meta.compact(),
		"spec":       spec.compact(),
	}
	if len(b.Extended) > 0 {
		out["extended"] = b.Extended
	}
	data, err := json.Marshal(out.compact())
	if err != nil {
		return nil, fmt.Errorf("marshal %s %q: %w", kind, b.Ref, err)
	}
	return data, nil
}

// obj is a JSON object under construction.
type obj map[string]any

// compact drops the entries Parse would read as their default anyway:
// empty strings, zero numbers, false (except "enabled", whose default is
// true), and empty lists and objects. It returns nil for an object left
// empty.
func (o obj) compact() obj {
	for k, v := range o {
		empty := false
		switch v := v.(type) {
		case string:
			empty = v == ""
		case int:
			empty = v == 0
		case bool:
			empty = !v && k != "enabled" || v && k == "enabled"
		case obj:
			empty = len(v) == 0
		case []any:
			empty = len(v) == 0
		case []string:
			empty = len(v) == 0
		case nil:
			empty = true
		}
		if empty {
			delete(o, k)
		}
	}
	if len(o) == 0 {
		return nil
	}
	return o
}

// strs returns a list that encodes as JSON strings, nil when empty.
func strs(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// Unmarshal decodes one resource that Marshal encoded (any single resource
// in Routr's JSON format). The resource has no Source; any problem,
// including a body that is not exactly one resource, is an error.
func Unmarshal(data []byte) (Resource, error) {
	rs, err := Parse("stored.json", data)
	if err != nil {
		return nil, err
	}
	if len(rs) != 1 {
		return nil, fmt.Errorf("unmarshal: got %d resources, want 1", len(rs))
	}
	r := rs[0]
	r.Meta().Source = Source{}
	return r, nil
}
