package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/routr-go/routr/internal/apipb/aclpb"
	"github.com/routr-go/routr/internal/apipb/agentspb"
	"github.com/routr-go/routr/internal/apipb/credentialspb"
	"github.com/routr-go/routr/internal/apipb/domainspb"
	"github.com/routr-go/routr/internal/apipb/numberspb"
	"github.com/routr-go/routr/internal/apipb/peerspb"
	"github.com/routr-go/routr/internal/apipb/trunkspb"
	"github.com/routr-go/routr/internal/resources"
)

// applyOrder puts referenced kinds before the kinds referring to them.
var applyOrder = []resources.Kind{
	resources.KindACL, resources.KindCredentials, resources.KindTrunk, resources.KindNumber,
	resources.KindDomain, resources.KindAgent, resources.KindPeer,
}

// ctlApplyAPI creates or updates the resources of f.file through the API
// (apply -api): for a remote edge, or without database access. Routr's
// wire format cannot say enabled: false or privacy: Private, so such
// values are reported and left at the API's defaults.
func ctlApplyAPI(ctx context.Context, f ctlFlags, stdout, stderr io.Writer) error {
	rs, err := readResourceFiles(f.file)
	if err != nil {
		return err
	}
	hc, base, err := apiClient(f)
	if err != nil {
		return err
	}
	kinds := ctlKinds(hc, base)
	slices.SortStableFunc(rs, func(a, b resources.Resource) int {
		return slices.Index(applyOrder, a.Meta().Kind) - slices.Index(applyOrder, b.Meta().Kind)
	})
	for _, r := range rs {
		b := r.Meta()
		k, err := findKind(kinds, string(b.Kind))
		if err != nil {
			return err
		}
		fields, lost := requestFields(r)
		for _, l := range lost {
			fmt.Fprintf(stderr, "warning: %s %q: %s cannot be expressed in Routr's API; apply without -api to store it\n", b.Kind, b.Ref, l)
		}
		descs := requestDescs[b.Kind]
		create := b.Ref == ""
		if !create {
			_, err := k.get(ctx, nil, []string{"ref=" + b.Ref})
			if connect.CodeOf(err) != connect.CodeNotFound && err != nil {
				return fmt.Errorf("%s %q: %w", b.Kind, b.Ref, apiError(err))
			}
			create = err != nil
		}
		op, verb, desc := k.update, "updated", descs[1]
		if create {
			op, verb, desc = k.create, "created", descs[0]
		}
		for name := range fields {
			if desc.Fields().ByJSONName(name) == nil {
				delete(fields, name) // e.g. a Domain's URI, which Update cannot change
			}
		}
		body, err := json.Marshal(fields)
		if err != nil {
			return fmt.Errorf("%s %q: %w", b.Kind, b.Ref, err)
		}
		m, err := op(ctx, body, nil)
		if err != nil {
			return fmt.Errorf("%s %q (%s:%d): %w", b.Kind, b.Ref, b.Source.File, b.Source.Line, apiError(err))
		}
		ref := m.ProtoReflect().Get(m.ProtoReflect().Descriptor().Fields().ByName("ref")).String()
		fmt.Fprintf(stdout, "%s %s %s\n", verb, b.Kind, ref)
	}
	fmt.Fprintf(stdout, "%d resources applied\n", len(rs))
	return nil
}

// requestDescs are each kind's Create and Update request messages.
var requestDescs = map[resources.Kind][2]protoreflect.MessageDescriptor{
	resources.KindACL:         {(&aclpb.CreateACLRequest{}).ProtoReflect().Descriptor(), (&aclpb.UpdateACLRequest{}).ProtoReflect().Descriptor()},
	resources.KindCredentials: {(&credentialspb.CreateCredentialsRequest{}).ProtoReflect().Descriptor(), (&credentialspb.UpdateCredentialsRequest{}).ProtoReflect().Descriptor()},
	resources.KindDomain:      {(&domainspb.CreateDomainRequest{}).ProtoReflect().Descriptor(), (&domainspb.UpdateDomainRequest{}).ProtoReflect().Descriptor()},
	resources.KindAgent:       {(&agentspb.CreateAgentRequest{}).ProtoReflect().Descriptor(), (&agentspb.UpdateAgentRequest{}).ProtoReflect().Descriptor()},
	resources.KindNumber:      {(&numberspb.CreateNumberRequest{}).ProtoReflect().Descriptor(), (&numberspb.UpdateNumberRequest{}).ProtoReflect().Descriptor()},
	resources.KindPeer:        {(&peerspb.CreatePeerRequest{}).ProtoReflect().Descriptor(), (&peerspb.UpdatePeerRequest{}).ProtoReflect().Descriptor()},
	resources.KindTrunk:       {(&trunkspb.CreateTrunkRequest{}).ProtoReflect().Descriptor(), (&trunkspb.UpdateTrunkRequest{}).ProtoReflect().Descriptor()},
}

// requestFields renders r as the fields of its Create request (Connect
// JSON names; Update takes those it has), and lists the values the API
// cannot carry.
func requestFields(r resources.Resource) (map[string]any, []string) {
	b := r.Meta()
	m := map[string]any{"ref": b.Ref, "name": b.Name}
	if len(b.Extended) > 0 {
		m["extended"] = b.Extended
	}
	var lost []string
	enabled := func(on bool, what string) {
		if !on {
			lost = append(lost, what+": false")
		}
	}
	switch x := r.(type) {
	case *resources.AccessControlList:
		m["allow"], m["deny"] = x.Allow, x.Deny
	case *resources.Credentials:
		m["username"], m["password"] = x.Username, x.Password
	case *resources.Domain:
		m["domainUri"], m["accessControlListRef"] = x.DomainURI, x.AccessControlListRef
		var eps []map[string]any
		for _, e := range x.EgressPolicies {
			eps = append(eps, map[string]any{"rule": e.Rule, "numberRef": e.NumberRef})
		}
		m["egressPolicies"] = eps
	case *resources.Agent:
		m["username"], m["domainRef"], m["credentialsRef"] = x.Username, x.DomainRef, x.CredentialsRef
		m["maxContacts"], m["expires"], m["enabled"], m["privacy"] = x.MaxContacts, x.Expires, true, "NONE"
		enabled(x.Enabled, "spec.enabled")
		if x.Privacy == resources.PrivacyPrivate {
			lost = append(lost, "spec.privacy: Private")
		}
	case *resources.Number:
		m["telUrl"], m["aorLink"], m["trunkRef"] = x.TelURL, x.AORLink, x.TrunkRef
		m["city"], m["country"], m["countryIsoCode"] = x.City, x.Country, x.CountryISOCode
		m["sessionAffinityHeader"] = x.SessionAffinityHeader
		var hs []map[string]any
		for _, h := range x.ExtraHeaders {
			hs = append(hs, map[string]any{"name": h.Name, "value": h.Value})
		}
		m["extraHeaders"] = hs
	case *resources.Peer:
		m["username"], m["aor"], m["contactAddr"] = x.Username, x.AOR, x.ContactAddr
		m["credentialsRef"], m["accessControlListRef"] = x.CredentialsRef, x.AccessControlListRef
		m["withSessionAffinity"], m["maxContacts"], m["expires"], m["enabled"] = x.WithSessionAffinity, x.MaxContacts, x.Expires, true
		m["balancingAlgorithm"] = map[resources.BalancingAlgorithm]string{resources.RoundRobin: "ROUND_ROBIN", resources.LeastSessions: "LEAST_SESSIONS"}[x.BalancingAlgorithm]
		enabled(x.Enabled, "spec.enabled")
	case *resources.Trunk:
		m["inboundUri"], m["accessControlListRef"], m["inboundCredentialsRef"] = x.InboundURI, x.AccessControlListRef, x.InboundCredentialsRef
		m["sendRegister"], m["outboundCredentialsRef"] = x.SendRegister, x.OutboundCredentialsRef
		var us []map[string]any
		for i, u := range x.URIs {
			us = append(us, map[string]any{"host": u.Host, "port": u.Port, "transport": u.Transport, "user": u.User, "weight": u.Weight, "priority": u.Priority, "enabled": true})
			enabled(u.Enabled, fmt.Sprintf("spec.outbound.uris[%d].enabled", i))
		}
		m["uris"] = us
	}
	for k, v := range m {
		if v == "" || v == nil {
			delete(m, k)
		}
	}
	return m, lost
}
