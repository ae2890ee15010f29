package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/routr-go/routr/internal/apipb/aclpb/aclpbconnect"
	"github.com/routr-go/routr/internal/apipb/agentspb/agentspbconnect"
	"github.com/routr-go/routr/internal/apipb/credentialspb/credentialspbconnect"
	"github.com/routr-go/routr/internal/apipb/domainspb/domainspbconnect"
	"github.com/routr-go/routr/internal/apipb/numberspb/numberspbconnect"
	"github.com/routr-go/routr/internal/apipb/peerspb/peerspbconnect"
	"github.com/routr-go/routr/internal/apipb/trunkspb/trunkspbconnect"
	"github.com/routr-go/routr/internal/resources"
)

// rpc is one API method taking a request as Connect JSON (body, may be
// nil) plus field=value pairs that override it.
type rpc func(ctx context.Context, body []byte, kv []string) (proto.Message, error)

// ctlKind is what ctl can do with one kind of resource.
type ctlKind struct {
	kind                           resources.Kind
	names                          []string // accepted on the command line
	create, update, get, del, list rpc
	// columns are the table's headers and the Connect JSON paths of their
	// values.
	columns [][2]string
}

// call adapts a generated client method to rpc: body is decoded into the
// request with protojson (unknown fields are an error that names them).
func call[Req, Resp any, PReq interface {
	*Req
	proto.Message
}, PResp interface {
	*Resp
	proto.Message
}](f func(context.Context, *connect.Request[Req]) (*connect.Response[Resp], error)) rpc {
	return func(ctx context.Context, body []byte, kv []string) (proto.Message, error) {
		req := PReq(new(Req))
		body, err := requestJSON(req.ProtoReflect().Descriptor(), body, kv)
		if err != nil {
			return nil, err
		}
		if err := protojson.Unmarshal(body, req); err != nil {
			return nil, fmt.Errorf("request: %w", err)
		}
		resp, err := f(ctx, connect.NewRequest((*Req)(req)))
		if err != nil {
			return nil, err
		}
		return PResp(resp.Msg), nil
	}
}

// ctlKinds returns every kind's operations on the API at baseURL.
func ctlKinds(hc connect.HTTPClient, baseURL string, opts ...connect.ClientOption) []ctlKind {
	acl := aclpbconnect.NewACLServiceClient(hc, baseURL, opts...)
	ag := agentspbconnect.NewAgentsClient(hc, baseURL, opts...)
	cr := credentialspbconnect.NewCredentialsServiceClient(hc, baseURL, opts...)
	dm := domainspbconnect.NewDomainsClient(hc, baseURL, opts...)
	nb := numberspbconnect.NewNumbersClient(hc, baseURL, opts...)
	pr := peerspbconnect.NewPeersClient(hc, baseURL, opts...)
	tr := trunkspbconnect.NewTrunksClient(hc, baseURL, opts...)
	return []ctlKind{
		{resources.KindACL, []string{"acl", "acls", "accesscontrollist", "accesscontrollists"},
			call(acl.Create), call(acl.Update), call(acl.Get), call(acl.Delete), call(acl.List),
			[][2]string{{"REF", "ref"}, {"NAME", "name"}, {"ALLOW", "allow"}, {"DENY", "deny"}}},
		{resources.KindAgent, []string{"agent", "agents"},
			call(ag.Create), call(ag.Update), call(ag.Get), call(ag.Delete), call(ag.List),
			[][2]string{{"REF", "ref"}, {"NAME", "name"}, {"USERNAME", "username"}, {"DOMAIN", "domain.domainUri"}, {"ENABLED", "enabled"}}},
		{resources.KindCredentials, []string{"credentials", "credential", "creds"},
			call(cr.Create), call(cr.Update), call(cr.Get), call(cr.Delete), call(cr.List),
			[][2]string{{"REF", "ref"}, {"NAME", "name"}, {"USERNAME", "username"}}},
		{resources.KindDomain, []string{"domain", "domains"},
			call(dm.Create), call(dm.Update), call(dm.Get), call(dm.Delete), call(dm.List),
			[][2]string{{"REF", "ref"}, {"NAME", "name"}, {"DOMAIN URI", "domainUri"}, {"ACL", "accessControlList.ref"}}},
		{resources.KindNumber, []string{"number", "numbers"},
			call(nb.Create), call(nb.Update), call(nb.Get), call(nb.Delete), call(nb.List),
			[][2]string{{"REF", "ref"}, {"NAME", "name"}, {"TEL URL", "telUrl"}, {"AOR LINK", "aorLink"}, {"TRUNK", "trunk.ref"}}},
		{resources.KindPeer, []string{"peer", "peers"},
			call(pr.Create), call(pr.Update), call(pr.Get), call(pr.Delete), call(pr.List),
			[][2]string{{"REF", "ref"}, {"NAME", "name"}, {"USERNAME", "username"}, {"AOR", "aor"}, {"ENABLED", "enabled"}}},
		{resources.KindTrunk, []string{"trunk", "trunks"},
			call(tr.Create), call(tr.Update), call(tr.Get), call(tr.Delete), call(tr.List),
			[][2]string{{"REF", "ref"}, {"NAME", "name"}, {"INBOUND URI", "inboundUri"}, {"SEND REGISTER", "sendRegister"}}},
	}
}

func findKind(ks []ctlKind, name string) (ctlKind, error) {
	for _, k := range ks {
		for _, n := range k.names {
			if strings.EqualFold(n, name) {
				return k, nil
			}
		}
	}
	var names []string
	for _, k := range ks {
		names = append(names, k.names[0])
	}
	return ctlKind{}, fmt.Errorf("unknown kind %q; use one of %s", name, strings.Join(names, ", "))
}

// requestJSON merges field=value pairs into the JSON object body. Field
// names are the request's JSON (camelCase) or proto names; a value is
// taken as text for string and enum fields, split on commas for lists of
// strings, and read as JSON otherwise (numbers, booleans, objects, lists).
func requestJSON(md protoreflect.MessageDescriptor, body []byte, kv []string) ([]byte, error) {
	obj := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &obj); err != nil {
			return nil, fmt.Errorf("-d: want a JSON object: %w", err)
		}
	}
	for _, pair := range kv {
		name, val, ok := strings.Cut(pair, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want field=value", pair)
		}
		fd := md.Fields().ByJSONName(name)
		if fd == nil {
			fd = md.Fields().ByName(protoreflect.Name(name))
		}
		if fd == nil {
			var names []string
			for i := range md.Fields().Len() {
				names = append(names, md.Fields().Get(i).JSONName())
			}
			return nil, fmt.Errorf("%s has no field %q; fields: %s", md.Name(), name, strings.Join(names, ", "))
		}
		var raw []byte
		switch {
		case fd.IsList() && fd.Kind() == protoreflect.StringKind && !strings.HasPrefix(strings.TrimSpace(val), "["):
			parts := []string{}
			for p := range strings.SplitSeq(val, ",") {
				if p = strings.TrimSpace(p); p != "" {
					parts = append(parts, p)
				}
			}
			raw, _ = json.Marshal(parts)
		case !fd.IsList() && (fd.Kind() == protoreflect.StringKind || fd.Kind() == protoreflect.EnumKind):
			raw, _ = json.Marshal(val)
		default:
			if !json.Valid([]byte(val)) {
				return nil, fmt.Errorf("%s: %q is not a JSON value", name, val)
			}
			raw = []byte(val)
		}
		obj[fd.JSONName()] = raw
	}
	return json.Marshal(obj)
}
