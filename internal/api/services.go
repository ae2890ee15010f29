package api

import (
	"context"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/routr-go/routr/internal/apipb/aclpb"
	"github.com/routr-go/routr/internal/apipb/agentspb"
	"github.com/routr-go/routr/internal/apipb/credentialspb"
	"github.com/routr-go/routr/internal/apipb/domainspb"
	"github.com/routr-go/routr/internal/apipb/numberspb"
	"github.com/routr-go/routr/internal/apipb/peerspb"
	"github.com/routr-go/routr/internal/apipb/trunkspb"
	"github.com/routr-go/routr/internal/resources"
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

func empty() (*connect.Response[emptypb.Empty], error) {
	return connect.NewResponse(&emptypb.Empty{}), nil
}

// ---- AccessControlList

type aclService struct{ s *Server }

func (a aclService) Create(ctx context.Context, req *connect.Request[aclpb.CreateACLRequest]) (*connect.Response[aclpb.AccessControlList], error) {
	m := req.Msg
	rec, err := a.s.create(ctx, &resources.AccessControlList{Base: base(resources.KindACL, m.GetRef(), m.GetName(), fromStruct(m.GetExtended())), Allow: m.GetAllow(), Deny: m.GetDeny()})
	if err != nil {
		return nil, err
	}
	return ok(aclPB(rec))
}

func (a aclService) Update(ctx context.Context, req *connect.Request[aclpb.UpdateACLRequest]) (*connect.Response[aclpb.AccessControlList], error) {
	m := req.Msg
	rec, err := a.s.update(ctx, resources.KindACL, m.GetRef(), func(r resources.Resource) error {
		x, err := kindOf[*resources.AccessControlList](r)
		if err != nil {
			return err
		}
		set(&x.Name, m.GetName())
		if len(m.GetAllow()) > 0 {
			x.Allow = m.GetAllow()
		}
		if len(m.GetDeny()) > 0 {
			x.Deny = m.GetDeny()
		}
		if e := fromStruct(m.GetExtended()); e != nil {
			x.Extended = e
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ok(aclPB(rec))
}

func (a aclService) Get(ctx context.Context, req *connect.Request[aclpb.GetACLRequest]) (*connect.Response[aclpb.AccessControlList], error) {
	rec, err := a.s.get(ctx, resources.KindACL, req.Msg.GetRef())
	if err != nil {
		return nil, err
	}
	return ok(aclPB(rec))
}

func (a aclService) Delete(ctx context.Context, req *connect.Request[aclpb.DeleteACLRequest]) (*connect.Response[emptypb.Empty], error) {
	if err := a.s.delete(ctx, resources.KindACL, req.Msg.GetRef()); err != nil {
		return nil, err
	}
	return empty()
}

func (a aclService) List(ctx context.Context, req *connect.Request[aclpb.ListACLsRequest]) (*connect.Response[aclpb.ListACLsResponse], error) {
	recs, next, err := a.s.list(ctx, resources.KindACL, req.Msg.GetPageSize(), req.Msg.GetPageToken())
	if err != nil {
		return nil, err
	}
	out := &aclpb.ListACLsResponse{NextPageToken: next}
	for _, r := range recs {
		out.Items = append(out.Items, aclPB(r))
	}
	return ok(out)
}

// ---- Credentials

type credentialsService struct{ s *Server }

func (c credentialsService) Create(ctx context.Context, req *connect.Request[credentialspb.CreateCredentialsRequest]) (*connect.Response[credentialspb.Credentials], error) {
	m := req.Msg
	rec, err := c.s.create(ctx, &resources.Credentials{Base: base(resources.KindCredentials, m.GetRef(), m.GetName(), fromStruct(m.GetExtended())), Username: m.GetUsername(), Password: m.GetPassword()})
	if err != nil {
		return nil, err
	}
	return ok(credentialsPB(rec))
}

func (c credentialsService) Update(ctx context.Context, req *connect.Request[credentialspb.UpdateCredentialsRequest]) (*connect.Response[credentialspb.Credentials], error) {
	m := req.Msg
	rec, err := c.s.update(ctx, resources.KindCredentials, m.GetRef(), func(r resources.Resource) error {
		x, err := kindOf[*resources.Credentials](r)
		if err != nil {
			return err
		}
		set(&x.Name, m.GetName())
		set(&x.Username, m.GetUsername())
		set(&x.Password, m.GetPassword())
		if e := fromStruct(m.GetExtended()); e != nil {
			x.Extended = e
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ok(credentialsPB(rec))
}

func (c credentialsService) Get(ctx context.Context, req *connect.Request[credentialspb.GetCredentialsRequest]) (*connect.Response[credentialspb.Credentials], error) {
	rec, err := c.s.get(ctx, resources.KindCredentials, req.Msg.GetRef())
	if err != nil {
		return nil, err
	}
	return ok(credentialsPB(rec))
}

func (c credentialsService) Delete(ctx context.Context, req *connect.Request[credentialspb.DeleteCredentialsRequest]) (*connect.Response[emptypb.Empty], error) {
	if err := c.s.delete(ctx, resources.KindCredentials, req.Msg.GetRef()); err != nil {
		return nil, err
	}
	return empty()
}

func (c credentialsService) List(ctx context.Context, req *connect.Request[credentialspb.ListCredentialsRequest]) (*connect.Response[credentialspb.ListCredentialsResponse], error) {
	recs, next, err := c.s.list(ctx, resources.KindCredentials, req.Msg.GetPageSize(), req.Msg.GetPageToken())
	if err != nil {
		return nil, err
	}
	out := &credentialspb.ListCredentialsResponse{NextPageToken: next}
	for _, r := range recs {
		out.Items = append(out.Items, credentialsPB(r))
	}
	return ok(out)
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
	if err != nil {
		return nil, err
	}
	return ok(newResolver(ctx, d.s.st).domainPB(rec))
}

func (d domainService) Update(ctx context.Context, req *connect.Request[domainspb.UpdateDomainRequest]) (*connect.Response[domainspb.Domain], error) {
	m := req.Msg
	rec, err := d.s.update(ctx, resources.KindDomain, m.GetRef(), func(r resources.Resource) error {
		x, err := kindOf[*resources.Domain](r)
		if err != nil {
			return err
		}
		set(&x.Name, m.GetName())
		set(&x.AccessControlListRef, m.GetAccessControlListRef())
		if len(m.GetEgressPolicies()) > 0 {
			x.EgressPolicies = egressPolicies(m.GetEgressPolicies())
		}
		if e := fromStruct(m.GetExtended()); e != nil {
			x.Extended = e
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ok(newResolver(ctx, d.s.st).domainPB(rec))
}

func (d domainService) Get(ctx context.Context, req *connect.Request[domainspb.GetDomainRequest]) (*connect.Response[domainspb.Domain], error) {
	rec, err := d.s.get(ctx, resources.KindDomain, req.Msg.GetRef())
	if err != nil {
		return nil, err
	}
	return ok(newResolver(ctx, d.s.st).domainPB(rec))
}

func (d domainService) Delete(ctx context.Context, req *connect.Request[domainspb.DeleteDomainRequest]) (*connect.Response[emptypb.Empty], error) {
	if err := d.s.delete(ctx, resources.KindDomain, req.Msg.GetRef()); err != nil {
		return nil, err
	}
	return empty()
}

func (d domainService) List(ctx context.Context, req *connect.Request[domainspb.ListDomainRequest]) (*connect.Response[domainspb.ListDomainsResponse], error) {
	recs, next, err := d.s.list(ctx, resources.KindDomain, req.Msg.GetPageSize(), req.Msg.GetPageToken())
	if err != nil {
		return nil, err
	}
	rv := newResolver(ctx, d.s.st)
	out := &domainspb.ListDomainsResponse{NextPageToken: next}
	for _, r := range recs {
		out.Items = append(out.Items, rv.domainPB(r))
	}
	return ok(out)
}

func (d domainService) FindBy(ctx context.Context, req *connect.Request[domainspb.FindByRequest]) (*connect.Response[domainspb.FindByResponse], error) {
	recs, err := d.s.findBy(ctx, resources.KindDomain, req.Msg.GetFieldName(), req.Msg.GetFieldValue())
	if err != nil {
		return nil, err
	}
	rv := newResolver(ctx, d.s.st)
	out := &domainspb.FindByResponse{}
	for _, r := range recs {
		out.Items = append(out.Items, rv.domainPB(r))
	}
	return ok(out)
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
	if err != nil {
		return nil, err
	}
	return ok(newResolver(ctx, a.s.st).agentPB(rec))
}

func (a agentService) Update(ctx context.Context, req *connect.Request[agentspb.UpdateAgentRequest]) (*connect.Response[agentspb.Agent], error) {
	m := req.Msg
	rec, err := a.s.update(ctx, resources.KindAgent, m.GetRef(), func(r resources.Resource) error {
		x, err := kindOf[*resources.Agent](r)
		if err != nil {
			return err
		}
		set(&x.Name, m.GetName())
		if m.GetPrivacy() == agentspb.Privacy_NONE {
			x.Privacy = resources.PrivacyNone
		}
		set(&x.Enabled, m.GetEnabled())
		set(&x.DomainRef, m.GetDomainRef())
		set(&x.CredentialsRef, m.GetCredentialsRef())
		set(&x.MaxContacts, int(m.GetMaxContacts()))
		set(&x.Expires, int(m.GetExpires()))
		if e := fromStruct(m.GetExtended()); e != nil {
			x.Extended = e
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ok(newResolver(ctx, a.s.st).agentPB(rec))
}

func (a agentService) Get(ctx context.Context, req *connect.Request[agentspb.GetAgentRequest]) (*connect.Response[agentspb.Agent], error) {
	rec, err := a.s.get(ctx, resources.KindAgent, req.Msg.GetRef())
	if err != nil {
		return nil, err
	}
	return ok(newResolver(ctx, a.s.st).agentPB(rec))
}

func (a agentService) Delete(ctx context.Context, req *connect.Request[agentspb.DeleteAgentRequest]) (*connect.Response[emptypb.Empty], error) {
	if err := a.s.delete(ctx, resources.KindAgent, req.Msg.GetRef()); err != nil {
		return nil, err
	}
	return empty()
}

func (a agentService) List(ctx context.Context, req *connect.Request[agentspb.ListAgentsRequest]) (*connect.Response[agentspb.ListAgentsResponse], error) {
	recs, next, err := a.s.list(ctx, resources.KindAgent, req.Msg.GetPageSize(), req.Msg.GetPageToken())
	if err != nil {
		return nil, err
	}
	rv := newResolver(ctx, a.s.st)
	out := &agentspb.ListAgentsResponse{NextPageToken: next}
	for _, r := range recs {
		out.Items = append(out.Items, rv.agentPB(r))
	}
	return ok(out)
}

func (a agentService) FindBy(ctx context.Context, req *connect.Request[agentspb.FindByRequest]) (*connect.Response[agentspb.FindByResponse], error) {
	recs, err := a.s.findBy(ctx, resources.KindAgent, req.Msg.GetFieldName(), req.Msg.GetFieldValue())
	if err != nil {
		return nil, err
	}
	rv := newResolver(ctx, a.s.st)
	out := &agentspb.FindByResponse{}
	for _, r := range recs {
		out.Items = append(out.Items, rv.agentPB(r))
	}
	return ok(out)
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
	if err != nil {
		return nil, err
	}
	return ok(newResolver(ctx, n.s.st).numberPB(rec))
}

func (n numberService) Update(ctx context.Context, req *connect.Request[numberspb.UpdateNumberRequest]) (*connect.Response[numberspb.Number], error) {
	m := req.Msg
	rec, err := n.s.update(ctx, resources.KindNumber, m.GetRef(), func(r resources.Resource) error {
		x, err := kindOf[*resources.Number](r)
		if err != nil {
			return err
		}
		set(&x.Name, m.GetName())
		set(&x.AORLink, m.GetAorLink())
		set(&x.SessionAffinityHeader, m.GetSessionAffinityHeader())
		set(&x.TrunkRef, m.GetTrunkRef())
		if len(m.GetExtraHeaders()) > 0 {
			x.ExtraHeaders = extraHeaders(m.GetExtraHeaders())
		}
		if e := fromStruct(m.GetExtended()); e != nil {
			x.Extended = e
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ok(newResolver(ctx, n.s.st).numberPB(rec))
}

func (n numberService) Get(ctx context.Context, req *connect.Request[numberspb.GetNumberRequest]) (*connect.Response[numberspb.Number], error) {
	rec, err := n.s.get(ctx, resources.KindNumber, req.Msg.GetRef())
	if err != nil {
		return nil, err
	}
	return ok(newResolver(ctx, n.s.st).numberPB(rec))
}

func (n numberService) Delete(ctx context.Context, req *connect.Request[numberspb.DeleteNumberRequest]) (*connect.Response[emptypb.Empty], error) {
	if err := n.s.delete(ctx, resources.KindNumber, req.Msg.GetRef()); err != nil {
		return nil, err
	}
	return empty()
}

func (n numberService) List(ctx context.Context, req *connect.Request[numberspb.ListNumberRequest]) (*connect.Response[numberspb.ListNumbersResponse], error) {
	recs, next, err := n.s.list(ctx, resources.KindNumber, req.Msg.GetPageSize(), req.Msg.GetPageToken())
	if err != nil {
		return nil, err
	}
	rv := newResolver(ctx, n.s.st)
	out := &numberspb.ListNumbersResponse{NextPageToken: next}
	for _, r := range recs {
		out.Items = append(out.Items, rv.numberPB(r))
	}
	return ok(out)
}

func (n numberService) FindBy(ctx context.Context, req *connect.Request[numberspb.FindByRequest]) (*connect.Response[numberspb.FindByResponse], error) {
	recs, err := n.s.findBy(ctx, resources.KindNumber, req.Msg.GetFieldName(), req.Msg.GetFieldValue())
	if err != nil {
		return nil, err
	}
	rv := newResolver(ctx, n.s.st)
	out := &numberspb.FindByResponse{}
	for _, r := range recs {
		out.Items = append(out.Items, rv.numberPB(r))
	}
	return ok(out)
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
	if err != nil {
		return nil, err
	}
	return ok(newResolver(ctx, p.s.st).peerPB(rec))
}

func (p peerService) Update(ctx context.Context, req *connect.Request[peerspb.UpdatePeerRequest]) (*connect.Response[peerspb.Peer], error) {
	m := req.Msg
	rec, err := p.s.update(ctx, resources.KindPeer, m.GetRef(), func(r resources.Resource) error {
		x, err := kindOf[*resources.Peer](r)
		if err != nil {
			return err
		}
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
		if e := fromStruct(m.GetExtended()); e != nil {
			x.Extended = e
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ok(newResolver(ctx, p.s.st).peerPB(rec))
}

func (p peerService) Get(ctx context.Context, req *connect.Request[peerspb.GetPeerRequest]) (*connect.Response[peerspb.Peer], error) {
	rec, err := p.s.get(ctx, resources.KindPeer, req.Msg.GetRef())
	if err != nil {
		return nil, err
	}
	return ok(newResolver(ctx, p.s.st).peerPB(rec))
}

func (p peerService) Delete(ctx context.Context, req *connect.Request[peerspb.DeletePeerRequest]) (*connect.Response[emptypb.Empty], error) {
	if err := p.s.delete(ctx, resources.KindPeer, req.Msg.GetRef()); err != nil {
		return nil, err
	}
	return empty()
}

func (p peerService) List(ctx context.Context, req *connect.Request[peerspb.ListPeersRequest]) (*connect.Response[peerspb.ListPeersResponse], error) {
	recs, next, err := p.s.list(ctx, resources.KindPeer, req.Msg.GetPageSize(), req.Msg.GetPageToken())
	if err != nil {
		return nil, err
	}
	rv := newResolver(ctx, p.s.st)
	out := &peerspb.ListPeersResponse{NextPageToken: next}
	for _, r := range recs {
		out.Items = append(out.Items, rv.peerPB(r))
	}
	return ok(out)
}

func (p peerService) FindBy(ctx context.Context, req *connect.Request[peerspb.FindByRequest]) (*connect.Response[peerspb.FindByResponse], error) {
	recs, err := p.s.findBy(ctx, resources.KindPeer, req.Msg.GetFieldName(), req.Msg.GetFieldValue())
	if err != nil {
		return nil, err
	}
	rv := newResolver(ctx, p.s.st)
	out := &peerspb.FindByResponse{}
	for _, r := range recs {
		out.Items = append(out.Items, rv.peerPB(r))
	}
	return ok(out)
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
	if err != nil {
		return nil, err
	}
	return ok(newResolver(ctx, t.s.st).trunkPB(rec))
}

func (t trunkService) Update(ctx context.Context, req *connect.Request[trunkspb.UpdateTrunkRequest]) (*connect.Response[trunkspb.Trunk], error) {
	m := req.Msg
	rec, err := t.s.update(ctx, resources.KindTrunk, m.GetRef(), func(r resources.Resource) error {
		x, err := kindOf[*resources.Trunk](r)
		if err != nil {
			return err
		}
		set(&x.Name, m.GetName())
		set(&x.SendRegister, m.GetSendRegister())
		set(&x.InboundURI, m.GetInboundUri())
		set(&x.AccessControlListRef, m.GetAccessControlListRef())
		set(&x.InboundCredentialsRef, m.GetInboundCredentialsRef())
		set(&x.OutboundCredentialsRef, m.GetOutboundCredentialsRef())
		if len(m.GetUris()) > 0 {
			x.URIs = trunkURIs(m.GetUris())
		}
		if e := fromStruct(m.GetExtended()); e != nil {
			x.Extended = e
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ok(newResolver(ctx, t.s.st).trunkPB(rec))
}

func (t trunkService) Get(ctx context.Context, req *connect.Request[trunkspb.GetTrunkRequest]) (*connect.Response[trunkspb.Trunk], error) {
	rec, err := t.s.get(ctx, resources.KindTrunk, req.Msg.GetRef())
	if err != nil {
		return nil, err
	}
	return ok(newResolver(ctx, t.s.st).trunkPB(rec))
}

func (t trunkService) Delete(ctx context.Context, req *connect.Request[trunkspb.DeleteTrunkRequest]) (*connect.Response[emptypb.Empty], error) {
	if err := t.s.delete(ctx, resources.KindTrunk, req.Msg.GetRef()); err != nil {
		return nil, err
	}
	return empty()
}

func (t trunkService) List(ctx context.Context, req *connect.Request[trunkspb.ListTrunkRequest]) (*connect.Response[trunkspb.ListTrunksResponse], error) {
	recs, next, err := t.s.list(ctx, resources.KindTrunk, req.Msg.GetPageSize(), req.Msg.GetPageToken())
	if err != nil {
		return nil, err
	}
	rv := newResolver(ctx, t.s.st)
	out := &trunkspb.ListTrunksResponse{NextPageToken: next}
	for _, r := range recs {
		out.Items = append(out.Items, rv.trunkPB(r))
	}
	return ok(out)
}

func (t trunkService) FindBy(ctx context.Context, req *connect.Request[trunkspb.FindByRequest]) (*connect.Response[trunkspb.FindByResponse], error) {
	recs, err := t.s.findBy(ctx, resources.KindTrunk, req.Msg.GetFieldName(), req.Msg.GetFieldValue())
	if err != nil {
		return nil, err
	}
	rv := newResolver(ctx, t.s.st)
	out := &trunkspb.FindByResponse{}
	for _, r := range recs {
		out.Items = append(out.Items, rv.trunkPB(r))
	}
	return ok(out)
}
