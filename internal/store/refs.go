package store

import (
	"fmt"

	"github.com/routr-go/routr/internal/resources"
)

// refField is one reference a resource holds.
type refField struct {
	field, ref string
}

// refsOf lists the references r holds, with the field each is in, as
// resources.Build resolves them.
func refsOf(r resources.Resource) []refField {
	var out []refField
	add := func(field, ref string) {
		if ref != "" {
			out = append(out, refField{field, ref})
		}
	}
	switch x := r.(type) {
	case *resources.Domain:
		add("spec.accessControlListRef", x.AccessControlListRef)
		for i, e := range x.EgressPolicies {
			add(fmt.Sprintf("spec.context.egressPolicies[%d].numberRef", i), e.NumberRef)
		}
	case *resources.Agent:
		add("spec.domainRef", x.DomainRef)
		add("spec.credentialsRef", x.CredentialsRef)
	case *resources.Peer:
		add("spec.credentialsRef", x.CredentialsRef)
		add("spec.accessControlListRef", x.AccessControlListRef)
	case *resources.Number:
		add("spec.trunkRef", x.TrunkRef)
	case *resources.Trunk:
		add("spec.inbound.accessControlListRef", x.AccessControlListRef)
		add("spec.inbound.credentialsRef", x.InboundCredentialsRef)
		add("spec.outbound.credentialsRef", x.OutboundCredentialsRef)
	}
	return out
}

// referrers returns the resources in all that refer to ref.
func referrers(all []resources.Resource, ref string) []Referrer {
	var out []Referrer
	for _, r := range all {
		for _, f := range refsOf(r) {
			if f.ref == ref {
				out = append(out, Referrer{Kind: kindOf(r), Ref: r.Meta().Ref, Field: f.field})
			}
		}
	}
	return out
}

// kindOf returns r's kind from its Go type (Base.Kind may be unset on a
// resource a caller built).
func kindOf(r resources.Resource) resources.Kind {
	switch r.(type) {
	case *resources.Domain:
		return resources.KindDomain
	case *resources.Agent:
		return resources.KindAgent
	case *resources.Credentials:
		return resources.KindCredentials
	case *resources.Peer:
		return resources.KindPeer
	case *resources.Number:
		return resources.KindNumber
	case *resources.Trunk:
		return resources.KindTrunk
	case *resources.AccessControlList:
		return resources.KindACL
	}
	return ""
}
