package resources

import (
	_ "embed"
	"strings"
	"testing"
	"testing/fstest"
)

//go:embed testdata/base.yaml
var baseYAML string

// loadWith loads testdata/base.yaml (a small valid set: acl-01,
// credentials-01, domain-01 sip.local, trunk-01, number-01, agent-01 1001,
// peer-01 voice) as base.yaml plus the given files.
func loadWith(files map[string]string) (*Set, error) {
	fsys := fstest.MapFS{"base.yaml": {Data: []byte(baseYAML)}}
	for name, body := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(strings.TrimPrefix(body, "\n"))}
	}
	return LoadFS(fsys)
}

func TestBaseIsValid(t *testing.T) {
	if _, err := loadWith(nil); err != nil {
		t.Fatal(err)
	}
}

// agentHead is the start of a valid Agent; cases append spec fields at
// line 6 onwards.
const agentHead = `
- apiVersion: v2beta1
  kind: Agent
  ref: agent-02
  metadata: {name: Jane}
  spec:`

func TestValidation(t *testing.T) {
	tests := []struct {
		name string
		file string // file name, extra.yaml when empty (sorts after base.yaml)
		body string
		want string
	}{
		// Syntax and structure.
		{name: "yaml syntax", body: `
- kind: Agent
  ref: agent-02
 spec: {}
`, want: `extra.yaml:2: invalid YAML: did not find expected '-' indicator`},
		{name: "yaml tab", body: "- kind: Agent\n\tref: x\n",
			want: `extra.yaml:2: invalid YAML: found a tab character that violates indentation`},
		{name: "json syntax", file: "extra.json", body: `[
  {"kind": "Agent",}
]`, want: `extra.json:2: invalid JSON: invalid character '}' looking for beginning of object key string`},
		{name: "not a list", body: `hello`,
			want: `extra.yaml:1: expected a list of resources, got string "hello"`},
		{name: "item not a mapping", body: "- 42\n",
			want: `extra.yaml:1: expected a resource (a mapping), got integer 42`},
		{name: "missing kind", body: `
- apiVersion: v2beta1
  ref: agent-02
`, want: `extra.yaml:1: resource "agent-02": kind: required field missing`},
		{name: "unknown kind", body: `
- apiVersion: v2beta1
  kind: Gateway
  ref: gw-01
`, want: `extra.yaml:2: resource "gw-01": kind: unknown kind "Gateway" (want AccessControlList, Credentials, Domain, Agent, Trunk, Number, Peer)`},
		{name: "unsupported apiVersion", body: `
- apiVersion: v1
  kind: Credentials
  ref: credentials-02
  spec: {credentials: {username: jane, password: secret}}
`, want: `extra.yaml:1: Credentials "credentials-02": apiVersion: unsupported apiVersion "v1" (want v2beta1 or v2)`},
		{name: "missing apiVersion", body: `
- kind: Credentials
  ref: credentials-02
  spec: {credentials: {username: jane, password: secret}}
`, want: `extra.yaml:1: Credentials "credentials-02": apiVersion: required field missing`},
		{name: "missing ref", body: `
- apiVersion: v2
  kind: Credentials
  spec: {credentials: {username: jane, password: secret}}
`, want: `extra.yaml:1: Credentials: ref: required field missing`},
		{name: "ref with space", body: `
- apiVersion: v2
  kind: Credentials
  ref: my creds
  spec: {credentials: {username: jane, password: secret}}
`, want: `extra.yaml:3: Credentials "my creds": ref: must not contain spaces or control characters: "my creds"`},
		{name: "duplicate ref across kinds and files", body: `
- apiVersion: v2
  kind: Credentials
  ref: domain-01
  spec: {credentials: {username: jane, password: secret}}
`, want: `extra.yaml:3: Credentials "domain-01": ref: duplicate ref, also defined as Domain "domain-01" (base.yaml:18)`},
		{name: "duplicate field", body: agentHead + `
    username: "1002"
    username: "1003"
    domainRef: domain-01
`, want: `extra.yaml:7: Agent "agent-02": spec.username: duplicate field (first at line 6)`},
		{name: "extended not a mapping", body: `
- apiVersion: v2
  kind: Credentials
  ref: credentials-02
  spec: {credentials: {username: jane, password: secret}}
  extended: [1, 2]
`, want: `extra.yaml:5: Credentials "credentials-02": extended: expected a mapping, got a list`},

		// Types.
		{name: "string for integer", body: agentHead + `
    username: "1002"
    domainRef: domain-01
    maxContacts: lots
`, want: `extra.yaml:8: Agent "agent-02": spec.maxContacts: expected an integer, got string "lots"`},
		{name: "float for integer", body: agentHead + `
    username: "1002"
    domainRef: domain-01
    expires: 60.5
`, want: `extra.yaml:8: Agent "agent-02": spec.expires: expected an integer, got number 60.5`},
		{name: "quoted number for integer", file: "extra.json", body: `[{"apiVersion": "v2", "kind": "Trunk", "ref": "trunk-02",
  "spec": {"outbound": {"uris": [{"uri": {"host": "10.0.0.1", "port": "5060"}}]}}}]`,
			want: `extra.json:2: Trunk "trunk-02": spec.outbound.uris[0].uri.port: expected an integer, got string "5060"`},
		{name: "string for boolean", body: agentHead + `
    username: "1002"
    domainRef: domain-01
    enabled: yes
`, want: `extra.yaml:8: Agent "agent-02": spec.enabled: expected true or false, got string "yes"`},
		{name: "mapping for string", body: agentHead + `
    username: {first: 1002}
    domainRef: domain-01
`, want: `extra.yaml:6: Agent "agent-02": spec.username: expected a string, got a mapping`},
		{name: "scalar for mapping", body: `
- apiVersion: v2
  kind: Credentials
  ref: credentials-02
  spec: 5
`, want: `extra.yaml:4: Credentials "credentials-02": spec: expected a mapping, got integer 5`},
		{name: "scalar for list", body: `
- apiVersion: v2
  kind: AccessControlList
  ref: acl-02
  spec:
    accessControlList:
      allow: 10.0.0.0/8
`, want: `extra.yaml:6: AccessControlList "acl-02": spec.accessControlList.allow: expected a list, got string "10.0.0.0/8"`},

		// Required fields.
		{name: "agent username and domainRef", body: agentHead + `
    credentialsRef: credentials-01
`, want: `extra.yaml:5: Agent "agent-02": spec.username: required field missing
extra.yaml:5: Agent "agent-02": spec.domainRef: required field missing`},
		{name: "credentials password", body: `
- apiVersion: v2
  kind: Credentials
  ref: credentials-02
  spec:
    credentials:
      username: jane
`, want: `extra.yaml:5: Credentials "credentials-02": spec.credentials.password: required field missing`},
		{name: "domain uri", body: `
- apiVersion: v2
  kind: Domain
  ref: domain-02
  spec:
    context: {}
`, want: `extra.yaml:5: Domain "domain-02": spec.context.domainUri: required field missing`},
		{name: "number telUrl", body: `
- apiVersion: v2
  kind: Number
  ref: number-02
  spec:
    trunkRef: trunk-01
`, want: `extra.yaml:4: Number "number-02": spec.location.telUrl: required field missing`},
		{name: "peer aor and username", body: `
- apiVersion: v2
  kind: Peer
  ref: peer-02
  spec: {}
`, want: `extra.yaml:4: Peer "peer-02": spec.username: required field missing
extra.yaml:4: Peer "peer-02": spec.aor: required field missing`},
		{name: "trunk uri host", body: `
- apiVersion: v2
  kind: Trunk
  ref: trunk-02
  spec:
    outbound:
      uris:
        - uri: {port: 5060}
`, want: `extra.yaml:7: Trunk "trunk-02": spec.outbound.uris[0].uri.host: required field missing`},
		{name: "trunk outbound without uris", body: `
- apiVersion: v2
  kind: Trunk
  ref: trunk-02
  spec:
    outbound:
      sendRegister: true
`, want: `extra.yaml:5: Trunk "trunk-02": spec.outbound.uris: required field missing`},
		{name: "trunk inbound without uri", body: `
- apiVersion: v2
  kind: Trunk
  ref: trunk-02
  spec:
    inbound:
      accessControlListRef: acl-01
`, want: `extra.yaml:5: Trunk "trunk-02": spec.inbound.uri: required field missing`},
		{name: "egress policy fields", body: `
- apiVersion: v2
  kind: Domain
  ref: domain-02
  spec:
    context:
      domainUri: other.local
      egressPolicies:
        - {}
`, want: `extra.yaml:8: Domain "domain-02": spec.context.egressPolicies[0].rule: required field missing
extra.yaml:8: Domain "domain-02": spec.context.egressPolicies[0].numberRef: required field missing`},
		{name: "extra header value", body: `
- apiVersion: v2
  kind: Number
  ref: number-02
  spec:
    location:
      telUrl: tel:+18095863314
      extraHeaders:
        - name: X-Room-Id
`, want: `extra.yaml:8: Number "number-02": spec.location.extraHeaders[0].value: required field missing`},

		// Dangling and mistyped references.
		{name: "agent domainRef", body: agentHead + `
    username: "1002"
    domainRef: domain-99
`, want: `extra.yaml:7: Agent "agent-02": spec.domainRef: references unknown Domain "domain-99"`},
		{name: "agent credentialsRef", body: agentHead + `
    username: "1002"
    domainRef: domain-01
    credentialsRef: credentials-99
`, want: `extra.yaml:8: Agent "agent-02": spec.credentialsRef: references unknown Credentials "credentials-99"`},
		{name: "reference to the wrong kind", body: agentHead + `
    username: "1002"
    domainRef: credentials-01
`, want: `extra.yaml:7: Agent "agent-02": spec.domainRef: references Credentials "credentials-01" (base.yaml:9), want a Domain`},
		{name: "domain acl and egress number", body: `
- apiVersion: v2
  kind: Domain
  ref: domain-02
  spec:
    accessControlListRef: acl-99
    context:
      domainUri: other.local
      egressPolicies:
        - rule: .*
          numberRef: number-99
`, want: `extra.yaml:5: Domain "domain-02": spec.accessControlListRef: references unknown AccessControlList "acl-99"
extra.yaml:10: Domain "domain-02": spec.context.egressPolicies[0].numberRef: references unknown Number "number-99"`},
		{name: "number trunkRef", body: `
- apiVersion: v2
  kind: Number
  ref: number-02
  spec:
    trunkRef: trunk-99
    location: {telUrl: "tel:+18095863314"}
`, want: `extra.yaml:5: Number "number-02": spec.trunkRef: references unknown Trunk "trunk-99"`},
		{name: "trunk refs", body: `
- apiVersion: v2
  kind: Trunk
  ref: trunk-02
  spec:
    inbound:
      uri: trunk02.sip.local
      accessControlListRef: acl-99
      credentialsRef: credentials-98
    outbound:
      credentialsRef: credentials-97
      uris: [{uri: {host: 10.0.0.1}}]
`, want: `extra.yaml:7: Trunk "trunk-02": spec.inbound.accessControlListRef: references unknown AccessControlList "acl-99"
extra.yaml:8: Trunk "trunk-02": spec.inbound.credentialsRef: references unknown Credentials "credentials-98"
extra.yaml:10: Trunk "trunk-02": spec.outbound.credentialsRef: references unknown Credentials "credentials-97"`},
		{name: "peer refs", body: `
- apiVersion: v2
  kind: Peer
  ref: peer-02
  spec:
    username: asterisk
    aor: sip:asterisk@sip.local
    credentialsRef: credentials-99
    accessControlListRef: acl-99
`, want: `extra.yaml:7: Peer "peer-02": spec.credentialsRef: references unknown Credentials "credentials-99"
extra.yaml:8: Peer "peer-02": spec.accessControlListRef: references unknown AccessControlList "acl-99"`},
		{name: "domain acl in context conflicts", body: `
- apiVersion: v2
  kind: Domain
  ref: domain-02
  spec:
    accessControlListRef: acl-01
    context:
      domainUri: other.local
      accessControlListRef: acl-02
`, want: `extra.yaml:8: Domain "domain-02": spec.context.accessControlListRef: conflicts with spec.accessControlListRef "acl-01"`},

		// Values.
		{name: "telUrl scheme", body: `
- apiVersion: v2
  kind: Number
  ref: number-02
  spec:
    location:
      telUrl: "+18095863314"
`, want: `extra.yaml:6: Number "number-02": spec.location.telUrl: "+18095863314" must be tel: followed by the number, as in tel:+17066041487`},
		{name: "domainUri not a host", body: `
- apiVersion: v2
  kind: Domain
  ref: domain-02
  spec:
    context:
      domainUri: sip:other.local
`, want: `extra.yaml:6: Domain "domain-02": spec.context.domainUri: "sip:other.local" is not a valid host name`},
		{name: "domainUri numeric tld", body: `
- apiVersion: v2
  kind: Domain
  ref: domain-02
  spec:
    context:
      domainUri: 10.0.0.300
`, want: `extra.yaml:6: Domain "domain-02": spec.context.domainUri: "10.0.0.300" is not a valid host name`},
		{name: "inbound uri not a host", body: `
- apiVersion: v2
  kind: Trunk
  ref: trunk-02
  spec:
    inbound:
      uri: sip:trunk02.sip.local
`, want: `extra.yaml:6: Trunk "trunk-02": spec.inbound.uri: "sip:trunk02.sip.local" is not a valid host name or IP address`},
		{name: "bad CIDRs", body: `
- apiVersion: v2
  kind: AccessControlList
  ref: acl-02
  spec:
    accessControlList:
      allow: [10.0.0.0/33, 10.0.0.0/255.0.255.0, 10.0.0.1]
      deny: [everyone]
`, want: `extra.yaml:6: AccessControlList "acl-02": spec.accessControlList.allow[0]: "10.0.0.0/33" is not an IP address, CIDR or address/netmask
extra.yaml:6: AccessControlList "acl-02": spec.accessControlList.allow[1]: "10.0.0.0/255.0.255.0": 255.0.255.0 is not a contiguous IPv4 netmask
extra.yaml:7: AccessControlList "acl-02": spec.accessControlList.deny[0]: "everyone" is not an IP address, CIDR or address/netmask`},
		{name: "ports, transport, priority, weight, host, user", body: `
- apiVersion: v2
  kind: Trunk
  ref: trunk-02
  spec:
    outbound:
      uris:
        - uri: {host: 10.0.0.1, port: 0, transport: quic}
          weight: 0
          priority: -1
        - uri: {host: "bad host", user: "a b", port: 70000}
          weight: 70000
`, want: `extra.yaml:7: Trunk "trunk-02": spec.outbound.uris[0].uri.port: must be 1..65535, got 0
extra.yaml:7: Trunk "trunk-02": spec.outbound.uris[0].uri.transport: invalid value "quic" (want udp, tcp, tls, sctp, ws or wss)
extra.yaml:8: Trunk "trunk-02": spec.outbound.uris[0].weight: must be 1..65535, got 0
extra.yaml:9: Trunk "trunk-02": spec.outbound.uris[0].priority: must be 0..65535, got -1
extra.yaml:10: Trunk "trunk-02": spec.outbound.uris[1].uri.host: "bad host" is not a valid host name or IP address
extra.yaml:10: Trunk "trunk-02": spec.outbound.uris[1].uri.user: "a b" is not a valid SIP user name
extra.yaml:10: Trunk "trunk-02": spec.outbound.uris[1].uri.port: must be 1..65535, got 70000
extra.yaml:11: Trunk "trunk-02": spec.outbound.uris[1].weight: must be 1..65535, got 70000`},
		{name: "privacy", body: agentHead + `
    username: "1002"
    domainRef: domain-01
    privacy: Secret
`, want: `extra.yaml:8: Agent "agent-02": spec.privacy: invalid value "Secret" (want Private or None)`},
		{name: "username with @", body: agentHead + `
    username: jane@sip.local
    domainRef: domain-01
`, want: `extra.yaml:6: Agent "agent-02": spec.username: "jane@sip.local" is not a valid SIP user name (no spaces, @, :, <, > or quotes)`},
		{name: "maxContacts and expires", body: agentHead + `
    username: "1002"
    domainRef: domain-01
    maxContacts: -2
    expires: -1
`, want: `extra.yaml:8: Agent "agent-02": spec.maxContacts: must be -1 (no limit) or more, got -2
extra.yaml:9: Agent "agent-02": spec.expires: must not be negative, got -1`},
		{name: "balancing algorithm", body: `
- apiVersion: v2
  kind: Peer
  ref: peer-02
  spec:
    username: asterisk
    aor: sip:asterisk@sip.local
    loadBalancing:
      algorithm: random
`, want: `extra.yaml:8: Peer "peer-02": spec.loadBalancing.algorithm: invalid value "random" (want round-robin or least-sessions)`},
		{name: "peer aor scheme and contactAddr", body: `
- apiVersion: v2
  kind: Peer
  ref: peer-02
  spec:
    username: asterisk
    aor: asterisk@sip.local
    contactAddr: "10.0.0.5:99999"
`, want: `extra.yaml:6: Peer "peer-02": spec.aor: "asterisk@sip.local" must be sip:user@host or backend:name
extra.yaml:7: Peer "peer-02": spec.contactAddr: "10.0.0.5:99999" is not host or host:port`},
		{name: "egress rule regexp", body: `
- apiVersion: v2
  kind: Domain
  ref: domain-02
  spec:
    context:
      domainUri: other.local
      egressPolicies:
        - rule: ^(?!911).*
          numberRef: number-01
`, want: "extra.yaml:8: Domain \"domain-02\": spec.context.egressPolicies[0].rule: invalid regular expression: invalid or unsupported Perl syntax: `(?!`"},
		{name: "aorLink, affinity header, extra header name", body: `
- apiVersion: v2
  kind: Number
  ref: number-02
  spec:
    location:
      telUrl: tel:+18095863314
      aorLink: tel:+1234
      sessionAffinityHeader: X Room
      extraHeaders:
        - name: "X-Room:"
          value: a
`, want: `extra.yaml:7: Number "number-02": spec.location.aorLink: "tel:+1234" must be sip:user@host or backend:name
extra.yaml:8: Number "number-02": spec.location.sessionAffinityHeader: "X Room" is not a header name (letters, digits and dashes)
extra.yaml:10: Number "number-02": spec.location.extraHeaders[0].name: "X-Room:" is not a header name (letters, digits and dashes)`},

		// Uniqueness.
		{name: "duplicate agent username in a domain", body: agentHead + `
    username: "1001"
    domainRef: domain-01
`, want: `extra.yaml:6: Agent "agent-02": spec.username: "1001" is also the username of Agent "agent-01" (base.yaml:43) in Domain "domain-01"`},
		{name: "duplicate domainUri", body: `
- apiVersion: v2
  kind: Domain
  ref: domain-02
  spec:
    context:
      domainUri: SIP.Local
`, want: `extra.yaml:6: Domain "domain-02": spec.context.domainUri: "sip.local" is also the domainUri of Domain "domain-01" (base.yaml:18)`},
		{name: "duplicate telUrl", body: `
- apiVersion: v2
  kind: Number
  ref: number-02
  spec:
    location:
      telUrl: tel:+1-706-604-1487
`, want: `extra.yaml:6: Number "number-02": spec.location.telUrl: "tel:+1-706-604-1487" is also the telUrl of Number "number-01" (base.yaml:34)`},
		{name: "duplicate inbound uri", body: `
- apiVersion: v2
  kind: Trunk
  ref: trunk-02
  spec:
    inbound:
      uri: trunk01.sip.local
`, want: `extra.yaml:6: Trunk "trunk-02": spec.inbound.uri: "trunk01.sip.local" is also the inbound uri of Trunk "trunk-01" (base.yaml:26)`},
		{name: "duplicate peer username", body: `
- apiVersion: v2
  kind: Peer
  ref: peer-02
  spec:
    username: voice
    aor: backend:voice_ls
`, want: `extra.yaml:5: Peer "peer-02": spec.username: "voice" is also the username of Peer "peer-01" (base.yaml:52)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := tt.file
			if file == "" {
				file = "extra.yaml"
			}
			_, err := loadWith(map[string]string{file: tt.body})
			if err == nil {
				t.Fatalf("no error, want\n%s", tt.want)
			}
			if _, ok := err.(*ValidationError); !ok {
				t.Fatalf("error is %T, want *ValidationError", err)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}
