package resources

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/routr-go/routr/internal/yamlnode"
)

// Parse decodes the resources in one file. data is a YAML or JSON list of
// resources (a single resource, and several YAML documents, are accepted
// too); filename is used in problems and, when it ends in ".json", selects
// strict JSON syntax checking.
//
// Parse checks syntax, kinds and field types and records where every field
// was read from. It does not check values or references: [Build] does,
// so that resources from other sources get the same checks. Parse returns
// every resource whose kind it recognised, even when some of its fields
// had problems, so that Build does not report references to them as
// dangling; such resources carry their problems, which Build reports
// again (LoadDir reports each once), so they never build into a Set. The
// error, if any, is a *ValidationError.
func Parse(filename string, data []byte) ([]Resource, error) {
	d := newDecoder(filename)
	rs := d.parseFile(data)
	return rs, validationError(d.probs)
}

func (d *decoder) parseFile(data []byte) (rs []Resource) {
	if strings.EqualFold(filepath.Ext(d.file), ".json") {
		if p, ok := checkJSON(data); !ok {
			p.File = d.file
			d.probs = append(d.probs, p)
			return nil
		}
		data = jsonForYAML(data)
	}
	docs, err := yamlnode.DecodeAll(data)
	if err != nil {
		d.probs = append(d.probs, yamlProblem(d.file, err))
		// Keep what parsed before the broken document.
	}
	for _, doc := range docs {
		root := doc
		if root.Kind == yaml.DocumentNode {
			if len(root.Content) == 0 {
				continue
			}
			root = root.Content[0]
		}
		root = yamlnode.Deref(root)
		switch {
		case yamlnode.IsNull(root):
		case root.Kind == yaml.SequenceNode:
			for _, item := range root.Content {
				if r := d.resource(item); r != nil {
					rs = append(rs, r)
				}
			}
		case root.Kind == yaml.MappingNode:
			if r := d.resource(root); r != nil {
				rs = append(rs, r)
			}
		default:
			d.errorf(root, "", "expected a list of resources, got %s", yamlnode.Describe(root))
		}
	}
	return rs
}

// yamlProblem turns a yaml.v3 syntax error into a Problem with its line.
func yamlProblem(file string, err error) Problem {
	line, msg := yamlnode.SyntaxError(err)
	return Problem{File: file, Line: line, Msg: "invalid YAML: " + msg}
}

// checkJSON reports a JSON syntax error with its line; YAML accepts some
// things JSON does not (trailing commas, comments), and a .json file
// should be JSON.
func checkJSON(data []byte) (Problem, bool) {
	var v any
	err := json.Unmarshal(data, &v)
	if err == nil {
		return Problem{}, true
	}
	p := Problem{Msg: "invalid JSON: " + err.Error()}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		p.Line = 1 + bytes.Count(data[:min(int(se.Offset), len(data))], []byte("\n"))
	}
	return p, false
}

// jsonForYAML rewrites the string literals of valid JSON that yaml.v3
// would misread (it rejects the escape \/ and escaped surrogate pairs) as
// equivalent double-quoted YAML strings. Literals never span lines, so
// line numbers are unchanged.
func jsonForYAML(data []byte) []byte {
	if bytes.IndexByte(data, '\\') < 0 {
		return data
	}
	out := make([]byte, 0, len(data))
	for i := 0; i < len(data); i++ {
		c := data[i]
		if c != '"' {
			out = append(out, c)
			continue
		}
		j := i + 1
		escaped := false
		for ; j < len(data) && data[j] != '"'; j++ {
			if data[j] == '\\' {
				escaped = true
				j++
			}
		}
		if j >= len(data) {
			return append(out, data[i:]...)
		}
		lit := data[i : j+1]
		var s string
		if escaped && json.Unmarshal(lit, &s) == nil {
			out = append(out, strconv.Quote(s)...)
		} else {
			out = append(out, lit...)
		}
		i = j
	}
	return out
}

// resource decodes one resource mapping; it returns nil when the kind is
// missing or unknown, since then nothing else can be decoded.
func (d *decoder) resource(n *yaml.Node) Resource {
	n = yamlnode.Deref(n)
	d.res = nil
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "", "expected a resource (a mapping), got %s", yamlnode.Describe(n))
		return nil
	}
	var kindNode, refNode *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch yamlnode.Deref(n.Content[i]).Value {
		case "kind":
			kindNode = yamlnode.Deref(n.Content[i+1])
		case "ref":
			refNode = yamlnode.Deref(n.Content[i+1])
		}
	}
	var ref, kind string
	if refNode != nil && refNode.Kind == yaml.ScalarNode && !yamlnode.IsNull(refNode) {
		ref = refNode.Value
	}
	if yamlnode.IsNull(kindNode) {
		d.probs = append(d.probs, Problem{File: d.file, Line: n.Line, Ref: ref, Field: "kind", Msg: "required field missing"})
		return nil
	}
	if kindNode.Kind == yaml.ScalarNode {
		kind = kindNode.Value
	}
	k, ok := parseKind(kind)
	if !ok {
		got := yamlnode.Describe(kindNode)
		if kindNode.Kind == yaml.ScalarNode {
			got = strconv.Quote(kind)
		}
		d.probs = append(d.probs, Problem{File: d.file, Line: kindNode.Line, Ref: ref, Field: "kind",
			Msg: fmt.Sprintf("unknown kind %s (want %s)", got, kindList())})
		return nil
	}

	// spec lists the fields of spec; meta lists those of metadata beyond
	// name and region.
	var r Resource
	var spec, meta yamlnode.Fields
	switch k {
	case KindDomain:
		x := &Domain{}
		r, spec = x, d.domainSpec(x)
	case KindAgent:
		x := &Agent{Enabled: true}
		r, spec = x, d.agentSpec(x)
	case KindCredentials:
		x := &Credentials{}
		r, spec = x, d.credentialsSpec(x)
	case KindPeer:
		x := &Peer{Enabled: true}
		r, spec = x, d.peerSpec(x)
	case KindNumber:
		x := &Number{}
		r, spec, meta = x, d.numberSpec(x), d.numberMeta(x)
	case KindTrunk:
		x := &Trunk{}
		r, spec = x, d.trunkSpec(x)
	case KindACL:
		x := &AccessControlList{}
		r, spec = x, d.aclSpec(x)
	}
	b := r.Meta()
	b.Kind, b.Ref = k, ref
	b.Source = Source{File: d.file, Line: n.Line}
	b.notes = &parseNotes{}
	d.res = b
	defer func() { d.res = nil }()

	w := &d.w
	metadata := yamlnode.Fields{
		"name":   w.StrField(&b.Name),
		"region": w.StrField(&b.Region),
	}
	maps.Copy(metadata, meta)
	w.Fields(n, "", yamlnode.Fields{
		"apiVersion": w.StrField(&b.APIVersion),
		"kind":       func(*yaml.Node, string) {}, // read above
		"ref":        w.StrField(&b.Ref),
		"metadata":   w.ObjectField(metadata),
		"spec":       w.ObjectField(spec),
		"extended":   func(v *yaml.Node, p string) { d.freeform(v, p, &b.Extended) },
	})
	return r
}

func kindList() string {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}

func (d *decoder) domainSpec(x *Domain) yamlnode.Fields {
	w := &d.w
	return yamlnode.Fields{
		"accessControlListRef": w.StrField(&x.AccessControlListRef),
		"context": func(v *yaml.Node, p string) {
			var ctxACL string
			var ctxACLNode *yaml.Node
			w.Fields(v, p, yamlnode.Fields{
				"domainUri": w.StrField(&x.DomainURI),
				"accessControlListRef": func(v *yaml.Node, p string) {
					w.Str(v, p, &ctxACL)
					ctxACLNode = v
				},
				"egressPolicies": yamlnode.ListField(w, &x.EgressPolicies, EgressPolicy{}, func(e *EgressPolicy) yamlnode.Fields {
					return yamlnode.Fields{
						"rule":      w.StrField(&e.Rule),
						"numberRef": w.StrField(&e.NumberRef),
					}
				}),
			})
			// Routr's schema puts the ACL in the context while its loader
			// reads it from spec; take either, refuse two different ones.
			switch {
			case ctxACL == "":
			case x.AccessControlListRef == "":
				x.AccessControlListRef = ctxACL
				d.res.notes.lines = append(d.res.notes.lines, fieldLine{"spec.accessControlListRef", ctxACLNode.Line})
			case ctxACL != x.AccessControlListRef:
				d.errorf(ctxACLNode, p+".accessControlListRef", "conflicts with spec.accessControlListRef %q", x.AccessControlListRef)
			}
		},
	}
}

func (d *decoder) agentSpec(x *Agent) yamlnode.Fields {
	w := &d.w
	return yamlnode.Fields{
		"username":       w.StrField(&x.Username),
		"domainRef":      w.StrField(&x.DomainRef),
		"credentialsRef": w.StrField(&x.CredentialsRef),
		"privacy":        w.StrField((*string)(&x.Privacy)),
		"enabled":        w.BoolField(&x.Enabled),
		"maxContacts":    w.IntField(&x.MaxContacts),
		"expires":        w.IntField(&x.Expires),
	}
}

func (d *decoder) credentialsSpec(x *Credentials) yamlnode.Fields {
	w := &d.w
	return yamlnode.Fields{
		"credentials": w.ObjectField(yamlnode.Fields{
			"username": w.StrField(&x.Username),
			"password": w.StrField(&x.Password),
		}),
	}
}

func (d *decoder) peerSpec(x *Peer) yamlnode.Fields {
	w := &d.w
	return yamlnode.Fields{
		"aor":                  w.StrField(&x.AOR),
		"username":             w.StrField(&x.Username),
		"contactAddr":          w.StrField(&x.ContactAddr),
		"credentialsRef":       w.StrField(&x.CredentialsRef),
		"accessControlListRef": w.StrField(&x.AccessControlListRef),
		"loadBalancing": w.ObjectField(yamlnode.Fields{
			"algorithm":           w.StrField((*string)(&x.BalancingAlgorithm)),
			"withSessionAffinity": w.BoolField(&x.WithSessionAffinity),
		}),
		"enabled":     w.BoolField(&x.Enabled),
		"maxContacts": w.IntField(&x.MaxContacts),
		"expires":     w.IntField(&x.Expires),
	}
}

func (d *decoder) numberMeta(x *Number) yamlnode.Fields {
	w := &d.w
	return yamlnode.Fields{
		"geoInfo": w.ObjectField(yamlnode.Fields{
			"city":           w.StrField(&x.City),
			"country":        w.StrField(&x.Country),
			"countryIsoCode": w.StrField(&x.CountryISOCode),
		}),
	}
}

func (d *decoder) numberSpec(x *Number) yamlnode.Fields {
	w := &d.w
	return yamlnode.Fields{
		"trunkRef": w.StrField(&x.TrunkRef),
		"location": w.ObjectField(yamlnode.Fields{
			"telUrl":                w.StrField(&x.TelURL),
			"aorLink":               w.StrField(&x.AORLink),
			"sessionAffinityHeader": w.StrField(&x.SessionAffinityHeader),
			"extraHeaders": yamlnode.ListField(w, &x.ExtraHeaders, ExtraHeader{}, func(h *ExtraHeader) yamlnode.Fields {
				return yamlnode.Fields{
					"name":  w.StrField(&h.Name),
					"value": w.StrField(&h.Value),
				}
			}),
		}),
	}
}

func (d *decoder) trunkSpec(x *Trunk) yamlnode.Fields {
	w := &d.w
	return yamlnode.Fields{
		"inbound": w.ObjectField(yamlnode.Fields{
			"uri":                  w.StrField(&x.InboundURI),
			"accessControlListRef": w.StrField(&x.AccessControlListRef),
			"credentialsRef":       w.StrField(&x.InboundCredentialsRef),
		}),
		"outbound": w.ObjectField(yamlnode.Fields{
			"sendRegister":   w.BoolField(&x.SendRegister),
			"credentialsRef": w.StrField(&x.OutboundCredentialsRef),
			"uris":           yamlnode.ListField(w, &x.URIs, TrunkURI{Enabled: true}, d.trunkURI),
		}),
	}
}

func (d *decoder) trunkURI(u *TrunkURI) yamlnode.Fields {
	w := &d.w
	return yamlnode.Fields{
		"uri": w.ObjectField(yamlnode.Fields{
			"user":      w.StrField(&u.User),
			"host":      w.StrField(&u.Host),
			"port":      w.IntField(&u.Port),
			"transport": w.StrField(&u.Transport),
		}),
		"priority": w.IntField(&u.Priority),
		"weight":   w.IntField(&u.Weight),
		"enabled":  w.BoolField(&u.Enabled),
	}
}

func (d *decoder) aclSpec(x *AccessControlList) yamlnode.Fields {
	w := &d.w
	return yamlnode.Fields{
		"accessControlList": w.ObjectField(yamlnode.Fields{
			"allow": w.StrListField(&x.Allow),
			"deny":  w.StrListField(&x.Deny),
		}),
	}
}
