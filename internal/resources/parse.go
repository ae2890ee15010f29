package resources

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
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
	d := &decoder{file: filename}
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
	docs, err := parseYAML(data)
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
		root = deref(root)
		switch {
		case isNull(root):
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
			d.errorf(root, "", "expected a list of resources, got %s", describe(root))
		}
	}
	return rs
}

// parseYAML decodes every document in data into nodes. yaml.v3 is not
// expected to panic, but a file is user input: a panic becomes an error.
func parseYAML(data []byte) (docs []*yaml.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				return docs, nil
			}
			return docs, err
		}
		docs = append(docs, &n)
	}
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlProblem turns a yaml.v3 syntax error into a Problem with its line.
func yamlProblem(file string, err error) Problem {
	msg := err.Error()
	p := Problem{File: file}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	p.Msg = "invalid YAML: " + msg
	return p
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
	n = deref(n)
	d.res = nil
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "", "expected a resource (a mapping), got %s", describe(n))
		return nil
	}
	var kindNode, refNode *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch deref(n.Content[i]).Value {
		case "kind":
			kindNode = deref(n.Content[i+1])
		case "ref":
			refNode = deref(n.Content[i+1])
		}
	}
	var ref, kind string
	if refNode != nil && refNode.Kind == yaml.ScalarNode && !isNull(refNode) {
		ref = refNode.Value
	}
	if isNull(kindNode) {
		d.probs = append(d.probs, Problem{File: d.file, Line: n.Line, Ref: ref, Field: "kind", Msg: "required field missing"})
		return nil
	}
	if kindNode.Kind == yaml.ScalarNode {
		kind = kindNode.Value
	}
	k, ok := parseKind(kind)
	if !ok {
		got := describe(kindNode)
		if kindNode.Kind == yaml.ScalarNode {
			got = strconv.Quote(kind)
		}
		d.probs = append(d.probs, Problem{File: d.file, Line: kindNode.Line, Ref: ref, Field: "kind",
			Msg: fmt.Sprintf("unknown kind %s (want %s)", got, kindList())})
		return nil
	}

	var r Resource
	var spec func(key string, v *yaml.Node, path string) bool
	var meta func(key string, v *yaml.Node, path string) bool
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
	b.lines = make(map[string]int)
	d.res = b
	defer func() { d.res = nil }()

	d.object(n, "", func(key string, v *yaml.Node, p string) bool {
		switch key {
		case "apiVersion":
			d.str(v, p, &b.APIVersion)
		case "kind":
		case "ref":
			d.str(v, p, &b.Ref)
		case "metadata":
			d.object(v, p, func(key string, v *yaml.Node, p string) bool {
				switch key {
				case "name":
					d.str(v, p, &b.Name)
				case "region":
					d.str(v, p, &b.Region)
				default:
					return meta != nil && meta(key, v, p)
				}
				return true
			})
		case "spec":
			d.object(v, p, spec)
		case "extended":
			d.freeform(v, p, &b.Extended)
		default:
			return false
		}
		return true
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

func (d *decoder) domainSpec(x *Domain) func(string, *yaml.Node, string) bool {
	return func(key string, v *yaml.Node, p string) bool {
		switch key {
		case "accessControlListRef":
			d.str(v, p, &x.AccessControlListRef)
		case "context":
			var ctxACL string
			var ctxACLNode *yaml.Node
			d.object(v, p, func(key string, v *yaml.Node, p string) bool {
				switch key {
				case "domainUri":
					d.str(v, p, &x.DomainURI)
				case "accessControlListRef":
					d.str(v, p, &ctxACL)
					ctxACLNode = v
				case "egressPolicies":
					d.list(v, p, func(_ int, v *yaml.Node, p string) {
						var e EgressPolicy
						d.object(v, p, func(key string, v *yaml.Node, p string) bool {
							switch key {
							case "rule":
								d.str(v, p, &e.Rule)
							case "numberRef":
								d.str(v, p, &e.NumberRef)
							default:
								return false
							}
							return true
						})
						x.EgressPolicies = append(x.EgressPolicies, e)
					})
				default:
					return false
				}
				return true
			})
			// Routr's schema puts the ACL in the context while its loader
			// reads it from spec; take either, refuse two different ones.
			switch {
			case ctxACL == "":
			case x.AccessControlListRef == "":
				x.AccessControlListRef = ctxACL
				d.res.lines["spec.accessControlListRef"] = ctxACLNode.Line
			case ctxACL != x.AccessControlListRef:
				d.errorf(ctxACLNode, p+".accessControlListRef", "conflicts with spec.accessControlListRef %q", x.AccessControlListRef)
			}
		default:
			return false
		}
		return true
	}
}

func (d *decoder) agentSpec(x *Agent) func(string, *yaml.Node, string) bool {
	return func(key string, v *yaml.Node, p string) bool {
		switch key {
		case "username":
			d.str(v, p, &x.Username)
		case "domainRef":
			d.str(v, p, &x.DomainRef)
		case "credentialsRef":
			d.str(v, p, &x.CredentialsRef)
		case "privacy":
			var s string
			d.str(v, p, &s)
			x.Privacy = Privacy(s)
		case "enabled":
			d.boolean(v, p, &x.Enabled)
		case "maxContacts":
			d.integer(v, p, &x.MaxContacts)
		case "expires":
			d.integer(v, p, &x.Expires)
		default:
			return false
		}
		return true
	}
}

func (d *decoder) credentialsSpec(x *Credentials) func(string, *yaml.Node, string) bool {
	return func(key string, v *yaml.Node, p string) bool {
		if key != "credentials" {
			return false
		}
		d.object(v, p, func(key string, v *yaml.Node, p string) bool {
			switch key {
			case "username":
				d.str(v, p, &x.Username)
			case "password":
				d.str(v, p, &x.Password)
			default:
				return false
			}
			return true
		})
		return true
	}
}

func (d *decoder) peerSpec(x *Peer) func(string, *yaml.Node, string) bool {
	return func(key string, v *yaml.Node, p string) bool {
		switch key {
		case "aor":
			d.str(v, p, &x.AOR)
		case "username":
			d.str(v, p, &x.Username)
		case "contactAddr":
			d.str(v, p, &x.ContactAddr)
		case "credentialsRef":
			d.str(v, p, &x.CredentialsRef)
		case "accessControlListRef":
			d.str(v, p, &x.AccessControlListRef)
		case "loadBalancing":
			d.object(v, p, func(key string, v *yaml.Node, p string) bool {
				switch key {
				case "algorithm":
					var s string
					d.str(v, p, &s)
					x.BalancingAlgorithm = BalancingAlgorithm(s)
				case "withSessionAffinity":
					d.boolean(v, p, &x.WithSessionAffinity)
				default:
					return false
				}
				return true
			})
		case "enabled":
			d.boolean(v, p, &x.Enabled)
		case "maxContacts":
			d.integer(v, p, &x.MaxContacts)
		case "expires":
			d.integer(v, p, &x.Expires)
		default:
			return false
		}
		return true
	}
}

func (d *decoder) numberMeta(x *Number) func(string, *yaml.Node, string) bool {
	return func(key string, v *yaml.Node, p string) bool {
		if key != "geoInfo" {
			return false
		}
		d.object(v, p, func(key string, v *yaml.Node, p string) bool {
			switch key {
			case "city":
				d.str(v, p, &x.City)
			case "country":
				d.str(v, p, &x.Country)
			case "countryIsoCode":
				d.str(v, p, &x.CountryISOCode)
			default:
				return false
			}
			return true
		})
		return true
	}
}

func (d *decoder) numberSpec(x *Number) func(string, *yaml.Node, string) bool {
	return func(key string, v *yaml.Node, p string) bool {
		switch key {
		case "trunkRef":
			d.str(v, p, &x.TrunkRef)
		case "location":
			d.object(v, p, func(key string, v *yaml.Node, p string) bool {
				switch key {
				case "telUrl":
					d.str(v, p, &x.TelURL)
				case "aorLink":
					d.str(v, p, &x.AORLink)
				case "sessionAffinityHeader":
					d.str(v, p, &x.SessionAffinityHeader)
				case "extraHeaders":
					d.list(v, p, func(_ int, v *yaml.Node, p string) {
						var h ExtraHeader
						d.object(v, p, func(key string, v *yaml.Node, p string) bool {
							switch key {
							case "name":
								d.str(v, p, &h.Name)
							case "value":
								d.str(v, p, &h.Value)
							default:
								return false
							}
							return true
						})
						x.ExtraHeaders = append(x.ExtraHeaders, h)
					})
				default:
					return false
				}
				return true
			})
		default:
			return false
		}
		return true
	}
}

func (d *decoder) trunkSpec(x *Trunk) func(string, *yaml.Node, string) bool {
	return func(key string, v *yaml.Node, p string) bool {
		switch key {
		case "inbound":
			d.object(v, p, func(key string, v *yaml.Node, p string) bool {
				switch key {
				case "uri":
					d.str(v, p, &x.InboundURI)
				case "accessControlListRef":
					d.str(v, p, &x.AccessControlListRef)
				case "credentialsRef":
					d.str(v, p, &x.InboundCredentialsRef)
				default:
					return false
				}
				return true
			})
		case "outbound":
			d.object(v, p, func(key string, v *yaml.Node, p string) bool {
				switch key {
				case "sendRegister":
					d.boolean(v, p, &x.SendRegister)
				case "credentialsRef":
					d.str(v, p, &x.OutboundCredentialsRef)
				case "uris":
					d.list(v, p, func(_ int, v *yaml.Node, p string) {
						x.URIs = append(x.URIs, d.trunkURI(v, p))
					})
				default:
					return false
				}
				return true
			})
		default:
			return false
		}
		return true
	}
}

func (d *decoder) trunkURI(n *yaml.Node, path string) TrunkURI {
	u := TrunkURI{Enabled: true}
	d.object(n, path, func(key string, v *yaml.Node, p string) bool {
		switch key {
		case "uri":
			d.object(v, p, func(key string, v *yaml.Node, p string) bool {
				switch key {
				case "user":
					d.str(v, p, &u.User)
				case "host":
					d.str(v, p, &u.Host)
				case "port":
					d.integer(v, p, &u.Port)
				case "transport":
					d.str(v, p, &u.Transport)
				default:
					return false
				}
				return true
			})
		case "priority":
			d.integer(v, p, &u.Priority)
		case "weight":
			d.integer(v, p, &u.Weight)
		case "enabled":
			d.boolean(v, p, &u.Enabled)
		default:
			return false
		}
		return true
	})
	return u
}

func (d *decoder) aclSpec(x *AccessControlList) func(string, *yaml.Node, string) bool {
	return func(key string, v *yaml.Node, p string) bool {
		if key != "accessControlList" {
			return false
		}
		d.object(v, p, func(key string, v *yaml.Node, p string) bool {
			switch key {
			case "allow":
				d.strList(v, p, &x.Allow)
			case "deny":
				d.strList(v, p, &x.Deny)
			default:
				return false
			}
			return true
		})
		return true
	}
}
