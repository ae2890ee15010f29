package resources

import (
	"net/netip"
	"regexp"
	"strings"
)

// Kind names a resource type as Routr spells it in the kind field.
type Kind string

// The kinds of resource Routr v2 defines.
const (
	KindDomain      Kind = "Domain"
	KindAgent       Kind = "Agent"
	KindCredentials Kind = "Credentials"
	KindPeer        Kind = "Peer"
	KindNumber      Kind = "Number"
	KindTrunk       Kind = "Trunk"
	KindACL         Kind = "AccessControlList"
)

// kinds lists every kind, in the order Set slices and docs use.
var kinds = []Kind{KindACL, KindCredentials, KindDomain, KindAgent, KindTrunk, KindNumber, KindPeer}

// parseKind returns the canonical Kind for s, compared case-insensitively as
// Routr does (it lowercases kind before loading).
func parseKind(s string) (Kind, bool) {
	for _, k := range kinds {
		if strings.EqualFold(string(k), s) {
			return k, true
		}
	}
	return "", false
}

// Resource is one Routr resource of any kind: *Domain, *Agent,
// *Credentials, *Peer, *Number, *Trunk or *AccessControlList.
type Resource interface {
	// Meta returns the fields every kind has.
	Meta() *Base
}

// Source is where a resource was read from. File is empty for resources
// that were not read from a file (an API, a database).
type Source struct {
	File string
	Line int
}

// Base holds the fields common to every kind. It is embedded in each kind's
// struct, so d.Ref, d.Name and so on read directly.
type Base struct {
	// APIVersion is "v2beta1" or "v2".
	APIVersion string
	// Kind is the canonical kind name (Build sets it from the Go type).
	Kind Kind
	// Ref uniquely identifies the resource among all kinds.
	Ref string
	// Name is metadata.name, a friendly name.
	Name string
	// Region is metadata.region (reserved, as in Routr).
	Region string
	// Extended is the resource's free-form extended object; read only.
	Extended map[string]any
	// Source is where the resource was read from.
	Source Source

	// notes is what Parse found out about the resource, for Build's
	// problems; nil in a Set's copies, which never report problems. One
	// pointer rather than its four fields: at 100,000 agents with
	// credentials each byte here is 200 kB.
	notes *parseNotes
}

// parseNotes is what Parse records about a resource beside its fields.
type parseNotes struct {
	// lines are the field paths ("spec.domainRef") seen, with the line
	// each was read from, so that Build can point at the field it
	// complains about; the last of a path counts. A slice rather than a
	// map: it is only searched to report a problem, and at 200,000
	// resources the maps held ~100 MB until Build.
	lines []fieldLine
	// bad holds paths that Parse already reported (wrong type), so that
	// Build does not report them again as missing or invalid.
	bad map[string]bool
	// problems are the errors Parse found in this resource; Build reports
	// them again, so that a resource Parse rejected never builds.
	problems []Problem
	// warnings are Parse's non-fatal findings (unknown fields).
	warnings []Problem
}

// Meta implements Resource.
func (b *Base) Meta() *Base { return b }

// fieldLine is a field path and the line it was read from.
type fieldLine struct {
	path string
	line int
}

// line returns the line field was read from, if Parse saw it.
func (b *Base) line(field string) (int, bool) {
	if b.notes == nil {
		return 0, false
	}
	for i := len(b.notes.lines) - 1; i >= 0; i-- {
		if fl := b.notes.lines[i]; fl.path == field {
			return fl.line, true
		}
	}
	return 0, false
}

// hasLine reports whether Parse saw field (lines start at 1).
func (b *Base) hasLine(field string) bool {
	l, _ := b.line(field)
	return l != 0
}

// isBad reports whether Parse already reported field.
func (b *Base) isBad(field string) bool { return b.notes != nil && b.notes.bad[field] }

// Privacy is an Agent's privacy setting.
type Privacy string

// Privacy values. Routr accepts any case in files; Build normalizes to these.
const (
	PrivacyNone    Privacy = "None"
	PrivacyPrivate Privacy = "Private"
)

// BalancingAlgorithm is how a Peer's registered contacts share calls.
type BalancingAlgorithm string

// Balancing algorithms Routr accepts in spec.loadBalancing.algorithm.
const (
	RoundRobin    BalancingAlgorithm = "round-robin"
	LeastSessions BalancingAlgorithm = "least-sessions"
)

// Domain is a SIP domain that Agents belong to (kind Domain).
type Domain struct {
	Base
	// DomainURI is spec.context.domainUri, a host name; Build lowercases it.
	DomainURI string
	// AccessControlListRef is spec.accessControlListRef (or, as a fallback,
	// spec.context.accessControlListRef, where Routr's JSON schema puts it).
	AccessControlListRef string
	// EgressPolicies is spec.context.egressPolicies, tried in order.
	EgressPolicies []EgressPolicy

	// ACL is the resolved AccessControlListRef; set by Build.
	ACL *AccessControlList
}

// EgressPolicy routes calls to numbers matching Rule through a Number.
type EgressPolicy struct {
	// Rule is a regular expression matched (unanchored) against the dialed
	// number, as Routr does with new RegExp(rule).test(number).
	Rule string
	// NumberRef names the Number (and so the Trunk) calls leave through.
	NumberRef string

	// Regexp is Rule compiled; set by Build.
	Regexp *regexp.Regexp
	// Number is the resolved NumberRef; set by Build.
	Number *Number
}

// Agent is a SIP user agent registering in a Domain (kind Agent).
type Agent struct {
	Base
	// Username is spec.username, the user part of the agent's AOR.
	Username string
	// DomainRef is spec.domainRef.
	DomainRef string
	// CredentialsRef is spec.credentialsRef.
	CredentialsRef string
	// Privacy is spec.privacy; PrivacyNone when absent.
	Privacy Privacy
	// Enabled is spec.enabled; true when absent.
	Enabled bool
	// MaxContacts is spec.maxContacts; 0 or -1 means no limit.
	MaxContacts int
	// Expires is spec.expires in seconds, overriding what the agent asks
	// for; 0 means no override.
	Expires int

	// Domain is the resolved DomainRef; set by Build.
	Domain *Domain
	// Credentials is the resolved CredentialsRef; set by Build.
	Credentials *Credentials
}

// Credentials is a username and password pair (kind Credentials).
type Credentials struct {
	Base
	// Username is spec.credentials.username.
	Username string
	// Password is spec.credentials.password.
	Password string
}

// Peer is a trusted SIP entity such as a media server (kind Peer).
type Peer struct {
	Base
	// Username is spec.username.
	Username string
	// AOR is spec.aor, "sip:..." or "backend:...".
	AOR string
	// ContactAddr is spec.contactAddr, host[:port], used instead of the
	// registered contact when set.
	ContactAddr string
	// CredentialsRef is spec.credentialsRef.
	CredentialsRef string
	// AccessControlListRef is spec.accessControlListRef.
	AccessControlListRef string
	// BalancingAlgorithm is spec.loadBalancing.algorithm; empty when absent.
	BalancingAlgorithm BalancingAlgorithm
	// WithSessionAffinity is spec.loadBalancing.withSessionAffinity.
	WithSessionAffinity bool
	// Enabled is spec.enabled; true when absent.
	Enabled bool
	// MaxContacts is spec.maxContacts; 0 or -1 means no limit.
	MaxContacts int
	// Expires is spec.expires in seconds; 0 means no override.
	Expires int

	// Credentials is the resolved CredentialsRef; set by Build.
	Credentials *Credentials
	// ACL is the resolved AccessControlListRef; set by Build.
	ACL *AccessControlList
}

// ExtraHeader is a header added to calls routed to a Number.
type ExtraHeader struct {
	Name  string
	Value string
}

// Number is a telephone number reached through a Trunk (kind Number).
type Number struct {
	Base
	// TelURL is spec.location.telUrl, "tel:+17066041487".
	TelURL string
	// AORLink is spec.location.aorLink: where calls to the number go,
	// "sip:user@domain" or "backend:name".
	AORLink string
	// SessionAffinityHeader is spec.location.sessionAffinityHeader.
	SessionAffinityHeader string
	// ExtraHeaders is spec.location.extraHeaders.
	ExtraHeaders []ExtraHeader
	// TrunkRef is spec.trunkRef.
	TrunkRef string
	// City is metadata.geoInfo.city.
	City string
	// Country is metadata.geoInfo.country.
	Country string
	// CountryISOCode is metadata.geoInfo.countryIsoCode.
	CountryISOCode string

	// Trunk is the resolved TrunkRef; set by Build.
	Trunk *Trunk
}

// TrunkURI is one outbound destination of a Trunk.
type TrunkURI struct {
	// User is uri.user.
	User string
	// Host is uri.host, a host name or IP address.
	Host string
	// Port is uri.port; 0 means the transport's default.
	Port int
	// Transport is uri.transport, lowercased ("udp", "tcp", "tls", "sctp",
	// "ws", "wss"); empty means udp.
	Transport string
	// Priority is priority (0..65535).
	Priority int
	// Weight is weight (1..65535); 0 means not set.
	Weight int
	// Enabled is enabled; true when absent.
	Enabled bool
}

// Trunk connects to a SIP provider (kind Trunk).
type Trunk struct {
	Base
	// InboundURI is spec.inbound.uri: the host that identifies calls from
	// this trunk in the Request-URI; Build lowercases it.
	InboundURI string
	// AccessControlListRef is spec.inbound.accessControlListRef.
	AccessControlListRef string
	// InboundCredentialsRef is spec.inbound.credentialsRef.
	InboundCredentialsRef string
	// SendRegister is spec.outbound.sendRegister.
	SendRegister bool
	// OutboundCredentialsRef is spec.outbound.credentialsRef.
	OutboundCredentialsRef string
	// URIs is spec.outbound.uris.
	URIs []TrunkURI

	// ACL is the resolved AccessControlListRef; set by Build.
	ACL *AccessControlList
	// InboundCredentials is the resolved InboundCredentialsRef; set by Build.
	InboundCredentials *Credentials
	// OutboundCredentials is the resolved OutboundCredentialsRef; set by
	// Build.
	OutboundCredentials *Credentials
}

// AccessControlList holds allow and deny rules (kind AccessControlList).
type AccessControlList struct {
	Base
	// Allow is spec.accessControlList.allow: IPs, CIDRs or ip/netmask.
	Allow []string
	// Deny is spec.accessControlList.deny, in the same forms.
	Deny []string

	// allow and deny are Allow and Deny parsed by Build.
	allow, deny []netip.Prefix
}
