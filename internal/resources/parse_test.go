package resources

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestParseJSONLinesAndEscapes(t *testing.T) {
	data := []byte(`[
	{
		"apiVersion": "v2",
		"kind": "credentials",
		"ref": "credentials-01",
		"metadata": {"name": "a\/b \ud83d\ude00 \"q\""},
		"spec": {"credentials": {"username": "1001", "password": "p\\w\/d"}}
	},
	{
		"apiVersion": "v2",
		"kind": "Agent",
		"ref": "agent-01",
		"spec": {
			"username": "1001",
			"domainRef": "domain-99"
		}
	}
]`)
	rs, err := Parse("creds.json", data)
	if err != nil {
		t.Fatal(err)
	}
	c := rs[0].(*Credentials)
	if c.Name != "a/b \U0001F600 \"q\"" || c.Password != `p\w/d` || c.Kind != KindCredentials || c.Source.Line != 2 {
		t.Errorf("credentials = %+v", c)
	}
	_, err = Build(rs)
	want := `creds.json:15: Agent "agent-01": spec.domainRef: references unknown Domain "domain-99"`
	if err == nil || err.Error() != want {
		t.Errorf("Build error = %v, want %s", err, want)
	}
}

// Routr's own file shapes: loadBalancing, geoInfo under metadata, the ACL
// in the domain context, privacy and transport in upper case, unquoted
// numbers where strings are expected, several documents, anchors.
func TestParseRoutrShapes(t *testing.T) {
	data := []byte(`
- apiVersion: v2beta1
  kind: accesscontrollist
  ref: acl-01
  metadata: {name: Europe}
  spec:
    accessControlList:
      deny: [0.0.0.0/1]
      allow: [192.168.1.3/31, 127.0.0.1/8, 10.0.0.0/255.0.0.0]
- apiVersion: v2beta1
  kind: Domain
  ref: domain-01
  metadata: &local {name: Local}
  spec:
    context:
      domainUri: sip.local
      accessControlListRef: acl-01
- &agent
  apiVersion: v2beta1
  kind: Agent
  ref: agent-01
  metadata: {name: John}
  spec:
    username: 1001
    domainRef: domain-01
    privacy: PRIVATE
    maxContacts: 3
    expires: 600
    enabled: false
---
- apiVersion: v2
  kind: Number
  ref: number-01
  metadata:
    name: "(706)604-1487"
    geoInfo: {city: "Columbus, GA", country: USA, countryIsoCode: US}
  spec:
    trunkRef: trunk-01
    location: {telUrl: "tel:+17066041487", aorLink: "sip:conference@sip.local"}
  extended:
    owner: {team: voice, ids: [1, 2]}
- apiVersion: v2
  kind: Trunk
  ref: trunk-01
  metadata: *local
  spec:
    inbound: {uri: Trunk01.Acme.com}
    outbound:
      sendRegister: true
      uris:
        - uri: {user: pbx-1, host: sip.provider.net, port: 7060, transport: UDP}
          priority: 10
          weight: 10
          enabled: false
- apiVersion: v2
  kind: Peer
  ref: peer-01
  spec:
    aor: sip:conference@sip.local
    username: asterisk
    contactAddr: "10.0.0.5:5060"
    loadBalancing: {withSessionAffinity: true, algorithm: least-sessions}
`)
	rs, err := Parse("routr.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Build(rs)
	if err != nil {
		t.Fatal(err)
	}
	if d := s.Domain("domain-01"); d.AccessControlListRef != "acl-01" || d.ACL != s.ACL("acl-01") {
		t.Errorf("domain = %+v", d)
	}
	a := s.AgentByRef("agent-01")
	if a.Username != "1001" || a.Privacy != PrivacyPrivate || a.MaxContacts != 3 || a.Expires != 600 || a.Enabled {
		t.Errorf("agent = %+v", a)
	}
	n := s.NumberByRef("number-01")
	if n.City != "Columbus, GA" || n.Country != "USA" || n.CountryISOCode != "US" || n.Trunk == nil {
		t.Errorf("number = %+v", n)
	}
	ext, _ := json.Marshal(n.Extended)
	if string(ext) != `{"owner":{"ids":[1,2],"team":"voice"}}` {
		t.Errorf("extended = %s", ext)
	}
	tr := s.TrunkByInboundURI("trunk01.acme.com")
	if tr == nil || tr.Name != "Local" || !tr.SendRegister || tr.URIs[0].Transport != "udp" || tr.URIs[0].Enabled {
		t.Errorf("trunk = %+v", tr)
	}
	p := s.PeerByUsername("asterisk")
	if p.BalancingAlgorithm != LeastSessions || !p.WithSessionAffinity || p.ContactAddr != "10.0.0.5:5060" || !p.Enabled {
		t.Errorf("peer = %+v", p)
	}
	if len(s.Warnings()) != 0 {
		t.Errorf("warnings: %v", s.Warnings())
	}
}

// Unknown fields are accepted and reported as warnings, with their line.
func TestUnknownFieldsWarn(t *testing.T) {
	data := []byte(`- apiVersion: v2
  kind: Credentials
  ref: credentials-01
  status: active
  metadata: {name: x, labels: {a: b}}
  spec:
    credentials: {username: jane, password: secret, hint: none}
`)
	rs, err := Parse("w.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Build(rs)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range s.Warnings() {
		got = append(got, w.String())
	}
	want := []string{
		`w.yaml:4: Credentials "credentials-01": status: unknown field, ignored`,
		`w.yaml:5: Credentials "credentials-01": metadata.labels: unknown field, ignored`,
		`w.yaml:7: Credentials "credentials-01": spec.credentials.hint: unknown field, ignored`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("warnings\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseEmptyAndSingle(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		n          int
	}{
		{"empty", "", 0},
		{"comment only", "# nothing yet\n", 0},
		{"empty list", "[]", 0},
		{"null", "~", 0},
		{"single mapping", "apiVersion: v2\nkind: Credentials\nref: c\nspec: {credentials: {username: u, password: p}}\n", 1},
	} {
		rs, err := Parse(tc.name+".yaml", []byte(tc.data))
		if err != nil || len(rs) != tc.n {
			t.Errorf("%s: %d resources, err %v; want %d", tc.name, len(rs), err, tc.n)
		}
	}
}

// Parse reports problems from every resource of a file, not only the first.
func TestParseCollectsAll(t *testing.T) {
	data := []byte(`- kind: Agent
  ref: a
  spec: {maxContacts: x}
- kind: Nope
  ref: b
- kind: Peer
  ref: c
  spec: {enabled: 2}
`)
	rs, err := Parse("all.yaml", data)
	want := `all.yaml:3: Agent "a": spec.maxContacts: expected an integer, got string "x"
all.yaml:4: resource "b": kind: unknown kind "Nope" (want AccessControlList, Credentials, Domain, Agent, Trunk, Number, Peer)
all.yaml:8: Peer "c": spec.enabled: expected true or false, got integer 2`
	if err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
	if len(rs) != 2 {
		t.Errorf("%d resources, want the 2 of known kinds", len(rs))
	}
	// Resources Parse found fault with never build, even if the caller
	// ignores Parse's error.
	if _, err := Build(rs); err == nil || !strings.Contains(err.Error(), `all.yaml:3: Agent "a": spec.maxContacts: expected an integer`) {
		t.Errorf("Build after Parse errors: %v", err)
	}
}
