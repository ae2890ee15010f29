package api

import (
	"context"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/emptypb"
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

// Updates follow Routr: a request field left at its zero value (which
// proto3 cannot tell from "not sent") keeps the stored value, and a
// non-empty list replaces the stored one. So a boolean can be set to true
// but not back to false through the API, as in Routr; `routr ctl apply`
// of a resource file can.

func set[T comparable](dst *T, v T) {
	var zero T
	if v != zero {
		*dst = v
	}
}

func base(kind resources.Kind, ref, name string, ext map[string]any) resources.Base {
	return resources.Base{APIVersion: apiVersion, Kind: kind, Ref: ref, Name: name, Extended: ext}
}

func ok[T any](m *T) (*connect.Response[T], error) { return connect.NewResponse(m), nil }

// update merges a request into the stored resource of kind and ref
// (merge copies the request's set fields; a non-empty extended replaces
// the stored one) and stores it.
func update[T resources.Resource](s *Server, ctx context.Context, kind resources.Kind, ref string, ext *structpb.Struct, merge func(T)) (store.Record, error) {
	return s.update(ctx, kind, ref, func(r resources.Resource) error {
		x, err := kindOf[T](r)
		if err != nil {
			return err
		}
		merge(x)
		if e := fromStruct(ext); e != nil {
			r.Meta().Extended = e
		}
		return nil
	})
}

// converter renders a stored resource as its API message.
type converter[M any] func(*resolver, store.Record) *M

// answer renders rec, or passes err on.
func answer[M any](s *Server, ctx context.Context, conv converter[M], rec store.Record, err error) (*connect.Response[M], error) {
	if err != nil {
		return nil, err
	}
	return ok(conv(newResolver(ctx, s.st), rec))
}

func getAs[M any](s *Server, ctx context.Context, kind resources.Kind, ref string, conv converter[M]) (*connect.Response[M], error) {
	rec, err := s.get(ctx, kind, ref)
	return answer(s, ctx, conv, rec, err)
}

func deleteAs(s *Server, ctx context.Context, kind resources.Kind, ref string) (*connect.Response[emptypb.Empty], error) {
	if err := s.delete(ctx, kind, ref); err != nil {
		return nil, err
	}
	return ok(&emptypb.Empty{})
}

// listAs answers a List request; wrap builds the response message.
func listAs[R, M any](s *Server, ctx context.Context, kind resources.Kind, size int32, token string, conv converter[M], wrap func([]*M, string) *R) (*connect.Response[R], error) {
	recs, next, err := s.list(ctx, kind, size, token)
	if err != nil {
		return nil, err
	}
	return ok(wrap(render(s, ctx, conv, recs), next))
}

// findAs answers a FindBy request.
func findAs[R, M any](s *Server, ctx context.Context, kind resources.Kind, field, value string, conv converter[M], wrap func([]*M) *R) (*connect.Response[R], error) {
	recs, err := s.findBy(ctx, kind, field, value)
	if err != nil {
		return nil, err
	}
	return ok(wrap(render(s, ctx, conv, recs)))
}

func render[M any](s *Server, ctx context.Context, conv converter[M], recs []store.Record) []*M {
	rv := newResolver(ctx, s.st)
	out := make([]*M, 0, len(recs))
	for _, r := range recs {
		out = append(out, conv(rv, r))
	}
	return out
}

// ---- AccessControlList

type aclService struct{ s *Server }

func (a aclService) Create(ctx context.Context, req *connect.Request[aclpb.CreateACLRequest]) (*connect.Response[aclpb.AccessControlList], error) {
	m := req.Msg
	rec, err := a.s.create(ctx, &resources.AccessControlList{Base: base(resources.KindACL, m.GetRef(), m.GetName(), fromStruct(m.GetExtended())), Allow: m.GetAllow(), Deny: m.GetDeny()})
	return answer(a.s, ctx, (*resolver).aclPB, rec, err)
}

func (a aclService) Update(ctx context.Context, req *connect.Request[aclpb.UpdateACLRequest]) (*connect.Response[aclpb.AccessControlList], error) {
	m := req.Msg
	rec, err := update(a.s, ctx, resources.KindACL, m.GetRef(), m.GetExtended(), func(x *resources.AccessControlList) {
		set(&x.Name, m.GetName())
		if len(m.GetAllow()) > 0 {
			x.Allow = m.GetAllow()
		}
		if len(m.GetDeny()) > 0 {
			x.Deny = m.GetDeny()
		}
	})
	return answer(a.s, ctx, (*resolver).aclPB, rec, err)
}

func (a aclService) Get(ctx context.Context, req *connect.Request[aclpb.GetACLRequest]) (*connect.Response[aclpb.AccessControlList], error) {
	return getAs(a.s, ctx, resources.KindACL, req.Msg.GetRef(), (*resolver).aclPB)
}

func (a aclService) Delete(ctx context.Context, req *connect.Request[aclpb.DeleteACLRequest]) (*connect.Response[emptypb.Empty], error) {
	return deleteAs(a.s, ctx, resources.KindACL, req.Msg.GetRef())
}

func (a aclService) List(ctx context.Context, req *connect.Request[aclpb.ListACLsRequest]) (*connect.Response[aclpb.ListACLsResponse], error) {
	return listAs(a.s, ctx, resources.KindACL, req.Msg.GetPageSize(), req.Msg.GetPageToken(), (*resolver).aclPB,
		func(items []*aclpb.AccessControlList, next string) *aclpb.ListACLsResponse {
			return &aclpb.ListACLsResponse{Items: items, NextPageToken: next}
		})
}

// ---- Credentials

type credentialsService struct{ s *Server }

func (c credentialsService) Create(ctx context.Context, req *connect.Request[credentialspb.CreateCredentialsRequest]) (*connect.Response[credentialspb.Credentials], error) {
	m := req.Msg
	rec, err := c.s.create(ctx, &resources.Credentials{Base: base(resources.KindCredentials, m.GetRef(), m.GetName(), fromStruct(m.GetExtended())), Username: m.GetUsername(), Password: m.GetPassword()})
	return answer(c.s, ctx, (*resolver).credentialsPB, rec, err)
}

func (c credentialsService) Update(ctx context.Context, req *connect.Request[credentialspb.UpdateCredentialsRequest]) (*connect.Response[credentialspb.Credentials], error) {
	m := req.Msg
	rec, err := update(c.s, ctx, resources.KindCredentials, m.GetRef(), m.GetExtended(), func(x *resources.Credentials) {
		set(&x.Name, m.GetName())
		set(&x.Username, m.GetUsername())
		set(&x.Password, m.GetPassword())
	})
	return answer(c.s, ctx, (*resolver).credentialsPB, rec, err)
}

func (c credentialsService) Get(ctx context.Context, req *connect.Request[credentialspb.GetCredentialsRequest]) (*connect.Response[credentialspb.Credentials], error) {
	return getAs(c.s, ctx, resources.KindCredentials, req.Msg.GetRef(), (*resolver).credentialsPB)
}

func (c credentialsService) Delete(ctx context.Context, req *connect.Request[credentialspb.DeleteCredentialsRequest]) (*connect.Response[emptypb.Empty], error) {
	return deleteAs(c.s, ctx, resources.KindCredentials, req.Msg.GetRef())
}

func (c credentialsService) List(ctx context.Context, req *connect.Request[credentialspb.ListCredentialsRequest]) (*connect.Response[credentialspb.ListCredentialsResponse], error) {
	return listAs(c.s, ctx, resources.KindCredentials, req.Msg.GetPageSize(), req.Msg.GetPageToken(), (*resolver).credentialsPB,
		func(items []*credentialspb.Credentials, next string) *credentialspb.ListCredentialsResponse {
			return &credentialspb.ListCredentialsResponse{Items: items, NextPageToken: next}
		})
}

// ---- Domains

type domainService struct{ s *Server }

func (d domainService) Create(ctx context.Context, req *connect.Request[domainspb.CreateDomainRequest]) (*connect.Response[domainspb.Domain], error) {
	m := req.Msg
	rec, err := d.s.create(ctx, &resources.Domain{
		Base:                 base(resources.KindDomain, m.GetRef(), m.GetName(), fromStruct(m.GetExtended())),
		DomainURI:            m.GetDomainUri(),
		AccessControlListRef: m.GetAccessControlListRef(),
		EgressPolicies:       egressPolicies(m.GetEgressPolicies()),
	})
	return answer(d.s, ctx, (*resolver).domainPB, rec, err)
}

func (d domainService) Update(ctx context.Context, req *connect.Request[domainspb.UpdateDomainRequest]) (*connect.Response[domainspb.Domain], error) {
	m := req.Msg
	rec, err := update(d.s, ctx, resources.KindDomain, m.GetRef(), m.GetExtended(), func(x *resources.Domain) {
		set(&x.Name, m.GetName())
		set(&x.AccessControlListRef, m.GetAccessControlListRef())
		if len(m.GetEgressPolicies()) > 0 {
			x.EgressPolicies = egressPolicies(m.GetEgressPolicies())
		}
	})
	return answer(d.s, ctx, (*resolver).domainPB, rec, err)
}

func (d domainService) Get(ctx context.Context, req *connect.Request[domainspb.GetDomainRequest]) (*connect.Response[domainspb.Domain], error) {
	return getAs(d.s, ctx, resources.KindDomain, req.Msg.GetRef(), (*resolver).domainPB)
}

func (d domainService) Delete(ctx context.Context, req *connect.Request[domainspb.DeleteDomainRequest]) (*connect.Response[emptypb.Empty], error) {
	return deleteAs(d.s, ctx, resources.KindDomain, req.Msg.GetRef())
}

func (d domainService) List(ctx context.Context, req *connect.Request[domainspb.ListDomainRequest]) (*connect.Response[domainspb.ListDomainsResponse], error) {
	return listAs(d.s, ctx, resources.KindDomain, req.Msg.GetPageSize(), req.Msg.GetPageToken(), (*resolver).domainPB,
		func(items []*domainspb.Domain, next string) *domainspb.ListDomainsResponse {
			return &domainspb.ListDomainsResponse{Items: items, NextPageToken: next}
		})
}

func (d domainService) FindBy(ctx context.Context, req *connect.Request[domainspb.FindByRequest]) (*connect.Response[domainspb.FindByResponse], error) {
	return findAs(d.s, ctx, resources.KindDomain, req.Msg.GetFieldName(), req.Msg.GetFieldValue(), (*resolver).domainPB,
		func(items []*domainspb.Domain) *domainspb.FindByResponse {
			return &domainspb.FindByResponse{Items: items}
		})
}

// ---- Agents

type agentService struct{ s *Server }

func (a agentService) Create(ctx context.Context, req *connect.Request[agentspb.CreateAgentRequest]) (*connect.Response[agentspb.Agent], error) {
	m := req.Msg
	rec, err := a.s.create(ctx, &resources.Agent{
		Base:     base(resources.KindAgent, m.GetRef(), m.GetName(), fromStruct(m.GetExtended())),
		Username: m.GetUsername(),
		// PRIVATE is the zero value: as in Routr, an agent created
		// through the API has privacy NONE.
		Privacy:        resources.PrivacyNone,
		Enabled:        true, // false on the wire is "not set"; Routr's default is enabled
		DomainRef:      m.GetDomainRef(),
		CredentialsRef: m.GetCredentialsRef(),
		MaxContacts:    int(m.GetMaxContacts()),
		Expires:        int(m.GetExpires()),
	})
	return answer(a.s, ctx, (*resolver).agentPB, rec, err)
}

func (a agentService) Update(ctx context.Context, req *connect.Request[agentspb.UpdateAgentRequest]) (*connect.Response[agentspb.Agent], error) {
	m := req.Msg
	rec, err := update(a.s, ctx, resources.KindAgent, m.GetRef(), m.GetExtended(), func(x *resources.Agent) {
		set(&x.Name, m.GetName())
		if m.GetPrivacy() == agentspb.Privacy_NONE {
			x.Privacy = resources.PrivacyNone
		}
		set(&x.Enabled, m.GetEnabled())
		set(&x.DomainRef, m.GetDomainRef())
		set(&x.CredentialsRef, m.GetCredentialsRef())
		set(&x.MaxContacts, int(m.GetMaxContacts()))
		set(&x.Expires, int(m.GetExpires()))
	})
	return answer(a.s, ctx, (*resolver).agentPB, rec, err)
}

func (a agentService) Get(ctx context.Context, req *connect.Request[agentspb.GetAgentRequest]) (*connect.Response[agentspb.Agent], error) {
	return getAs(a.s, ctx, resources.KindAgent, req.Msg.GetRef(), (*resolver).agentPB)
}

func (a agentService) Delete(ctx context.Context, req *connect.Request[agentspb.DeleteAgentRequest]) (*connect.Response[emptypb.Empty], error) {
	return deleteAs(a.s, ctx, resources.KindAgent, req.Msg.GetRef())
}

func (a agentService) List(ctx context.Context, req *connect.Request[agentspb.ListAgentsRequest]) (*connect.Response[agentspb.ListAgentsResponse], error) {
	return listAs(a.s, ctx, resources.KindAgent, req.Msg.GetPageSize(), req.Msg.GetPageToken(), (*resolver).agentPB,
		func(items []*agentspb.Agent, next string) *agentspb.ListAgentsResponse {
			return &agentspb.ListAgentsResponse{Items: items, NextPageToken: next}
		})
}

func (a agentService) FindBy(ctx context.Context, req *connect.Request[agentspb.FindByRequest]) (*connect.Response[agentspb.FindByResponse], error) {
	return findAs(a.s, ctx, resources.KindAgent, req.Msg.GetFieldName(), req.Msg.GetFieldValue(), (*resolver).agentPB,
		func(items []*agentspb.Agent) *agentspb.FindByResponse { return &agentspb.FindByResponse{Items: items} })
}

// ---- Numbers

type numberService struct{ s *Server }

func (n numberService) Create(ctx context.Context, req *connect.Request[numberspb.CreateNumberRequest]) (*connect.Response[numberspb.Number], error) {
	m := req.Msg
	rec, err := n.s.create(ctx, &resources.Number{
		Base:                  base(resources.KindNumber, m.GetRef(), m.GetName(), fromStruct(m.GetExtended())),
		TelURL:                m.GetTelUrl(),
		AORLink:               m.GetAorLink(),
		SessionAffinityHeader: m.GetSessionAffinityHeader(),
		ExtraHeaders:          extraHeaders(m.GetExtraHeaders()),
		TrunkRef:              m.GetTrunkRef(),
		City:                  m.GetCity(),
		Country:               m.GetCountry(),
		CountryISOCode:        m.GetCountryIsoCode(),
	})
	return answer(n.s, ctx, (*resolver).numberPB, rec, err)
}

func (n numberService) Update(ctx context.Context, req *connect.Request[numberspb.UpdateNumberRequest]) (*connect.Response[numberspb.Number], error) {
	m := req.Msg
	rec, err := update(n.s, ctx, resources.KindNumber, m.GetRef(), m.GetExtended(), func(x *resources.Number) {
		set(&x.Name, m.GetName())
		set(&x.AORLink, m.GetAorLink())
		set(&x.SessionAffinityHeader, m.GetSessionAffinityHeader())
		set(&x.TrunkRef, m.GetTrunkRef())
		if len(m.GetExtraHeaders()) > 0 {
			x.ExtraHeaders = extraHeaders(m.GetExtraHeaders())
		}
	})
	return answer(n.s, ctx, (*resolver).numberPB, rec, err)
}

func (n numberService) Get(ctx context.Context, req *connect.Request[numberspb.GetNumberRequest]) (*connect.Response[numberspb.Number], error) {
	return getAs(n.s, ctx, resources.KindNumber, req.Msg.GetRef(), (*resolver).numberPB)
}

func (n numberService) Delete(ctx context.Context, req *connect.Request[numberspb.DeleteNumberRequest]) (*connect.Response[emptypb.Empty], error) {
	return deleteAs(n.s, ctx, resources.KindNumber, req.Msg.GetRef())
}

func (n numberService) List(ctx context.Context, req *connect.Request[numberspb.ListNumberRequest]) (*connect.Response[numberspb.ListNumbersResponse], error) {
	return listAs(n.s, ctx, resources.KindNumber, req.Msg.GetPageSize(), req.Msg.GetPageToken(), (*resolver).numberPB,
		func(items []*numberspb.Number, next string) *numberspb.ListNumbersResponse {
			return &numberspb.ListNumbersResponse{Items: items, NextPageToken: next}
		})
}

func (n numberService) FindBy(ctx context.Context, req *connect.Request[numberspb.FindByRequest]) (*connect.Response[numberspb.FindByResponse], error) {
	return findAs(n.s, ctx, resources.KindNumber, req.Msg.GetFieldName(), req.Msg.GetFieldValue(), (*resolver).numberPB,
		func(items []*numberspb.Number) *numberspb.FindByResponse {
			return &numberspb.FindByResponse{Items: items}
		})
}

// ---- Peers

type peerService struct{ s *Server }

func (p peerService) Create(ctx context.Context, req *connect.Request[peerspb.CreatePeerRequest]) (*connect.Response[peerspb.Peer], error) {
	m := req.Msg
	rec, err := p.s.create(ctx, &resources.Peer{
		Base:                 base(resources.KindPeer, m.GetRef(), m.GetName(), fromStruct(m.GetExtended())),
		Username:             m.GetUsername(),
		AOR:                  m.GetAor(),
		ContactAddr:          m.GetContactAddr(),
		BalancingAlgorithm:   balancing(m.GetBalancingAlgorithm()),
		WithSessionAffinity:  m.GetWithSessionAffinity(),
		AccessControlListRef: m.GetAccessControlListRef(),
		CredentialsRef:       m.GetCredentialsRef(),
		Enabled:              true, // false on the wire is "not set"
		MaxContacts:          int(m.GetMaxContacts()),
		Expires:              int(m.GetExpires()),
	})
	return answer(p.s, ctx, (*resolver).peerPB, rec, err)
}

func (p peerService) Update(ctx context.Context, req *connect.Request[peerspb.UpdatePeerRequest]) (*connect.Response[peerspb.Peer], error) {
	m := req.Msg
	rec, err := update(p.s, ctx, resources.KindPeer, m.GetRef(), m.GetExtended(), func(x *resources.Peer) {
		set(&x.Name, m.GetName())
		set(&x.AOR, m.GetAor())
		set(&x.ContactAddr, m.GetContactAddr())
		set(&x.BalancingAlgorithm, balancing(m.GetBalancingAlgorithm()))
		set(&x.WithSessionAffinity, m.GetWithSessionAffinity())
		set(&x.AccessControlListRef, m.GetAccessControlListRef())
		set(&x.CredentialsRef, m.GetCredentialsRef())
		set(&x.Enabled, m.GetEnabled())
		set(&x.MaxContacts, int(m.GetMaxContacts()))
		set(&x.Expires, int(m.GetExpires()))
	})
	return answer(p.s, ctx, (*resolver).peerPB, rec, err)
}

func (p peerService) Get(ctx context.Context, req *connect.Request[peerspb.GetPeerRequest]) (*connect.Response[peerspb.Peer], error) {
	return getAs(p.s, ctx, resources.KindPeer, req.Msg.GetRef(), (*resolver).peerPB)
}

func (p peerService) Delete(ctx context.Context, req *connect.Request[peerspb.DeletePeerRequest]) (*connect.Response[emptypb.Empty], error) {
	return deleteAs(p.s, ctx, resources.KindPeer, req.Msg.GetRef())
}

func (p peerService) List(ctx context.Context, req *connect.Request[peerspb.ListPeersRequest]) (*connect.Response[peerspb.ListPeersResponse], error) {
	return listAs(p.s, ctx, resources.KindPeer, req.Msg.GetPageSize(), req.Msg.GetPageToken(), (*resolver).peerPB,
		func(items []*peerspb.Peer, next string) *peerspb.ListPeersResponse {
			return &peerspb.ListPeersResponse{Items: items, NextPageToken: next}
		})
}

func (p peerService) FindBy(ctx context.Context, req *connect.Request[peerspb.FindByRequest]) (*connect.Response[peerspb.FindByResponse], error) {
	return findAs(p.s, ctx, resources.KindPeer, req.Msg.GetFieldName(), req.Msg.GetFieldValue(), (*resolver).peerPB,
		func(items []*peerspb.Peer) *peerspb.FindByResponse { return &peerspb.FindByResponse{Items: items} })
}

// ---- Trunks

type trunkService struct{ s *Server }

func (t trunkService) Create(ctx context.Context, req *connect.Request[trunkspb.CreateTrunkRequest]) (*connect.Response[trunkspb.Trunk], error) {
	m := req.Msg
	rec, err := t.s.create(ctx, &resources.Trunk{
		Base:                   base(resources.KindTrunk, m.GetRef(), m.GetName(), fromStruct(m.GetExtended())),
		InboundURI:             m.GetInboundUri(),
		AccessControlListRef:   m.GetAccessControlListRef(),
		InboundCredentialsRef:  m.GetInboundCredentialsRef(),
		SendRegister:           m.GetSendRegister(),
		OutboundCredentialsRef: m.GetOutboundCredentialsRef(),
		URIs:                   trunkURIs(m.GetUris()),
	})
	return answer(t.s, ctx, (*resolver).trunkPB, rec, err)
}

func (t trunkService) Update(ctx context.Context, req *connect.Request[trunkspb.UpdateTrunkRequest]) (*connect.Response[trunkspb.Trunk], error) {
	m := req.Msg
	rec, err := update(t.s, ctx, resources.KindTrunk, m.GetRef(), m.GetExtended(), func(x *resources.Trunk) {
		set(&x.Name, m.GetName())
		set(&x.SendRegister, m.GetSendRegister())
		set(&x.InboundURI, m.GetInboundUri())
		set(&x.AccessControlListRef, m.GetAccessControlListRef())
		set(&x.InboundCredentialsRef, m.GetInboundCredentialsRef())
		set(&x.OutboundCredentialsRef, m.GetOutboundCredentialsRef())
		if len(m.GetUris()) > 0 {
			x.URIs = trunkURIs(m.GetUris())
		}
	})
	return answer(t.s, ctx, (*resolver).trunkPB, rec, err)
}

func (t trunkService) Get(ctx context.Context, req *connect.Request[trunkspb.GetTrunkRequest]) (*connect.Response[trunkspb.Trunk], error) {
	return getAs(t.s, ctx, resources.KindTrunk, req.Msg.GetRef(), (*resolver).trunkPB)
}

func (t trunkService) Delete(ctx context.Context, req *connect.Request[trunkspb.DeleteTrunkRequest]) (*connect.Response[emptypb.Empty], error) {
	return deleteAs(t.s, ctx, resources.KindTrunk, req.Msg.GetRef())
}

func (t trunkService) List(ctx context.Context, req *connect.Request[trunkspb.ListTrunkRequest]) (*connect.Response[trunkspb.ListTrunksResponse], error) {
	return listAs(t.s, ctx, resources.KindTrunk, req.Msg.GetPageSize(), req.Msg.GetPageToken(), (*resolver).trunkPB,
		func(items []*trunkspb.Trunk, next string) *trunkspb.ListTrunksResponse {
			return &trunkspb.ListTrunksResponse{Items: items, NextPageToken: next}
		})
}

func (t trunkService) FindBy(ctx context.Context, req *connect.Request[trunkspb.FindByRequest]) (*connect.Response[trunkspb.FindByResponse], error) {
	return findAs(t.s, ctx, resources.KindTrunk, req.Msg.GetFieldName(), req.Msg.GetFieldValue(), (*resolver).trunkPB,
		func(items []*trunkspb.Trunk) *trunkspb.FindByResponse { return &trunkspb.FindByResponse{Items: items} })
}
