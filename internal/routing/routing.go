// Package routing decides where a request goes: a pure function from what
// is known about the request, the resources and the location service to a
// decision the edge carries out.
package routing

import (
	"net/netip"
	"strings"

	"github.com/routr-go/routr/internal/location"
	"github.com/routr-go/routr/internal/resources"
)

// Direction names the kind of route, as Routr's X-Call-Direction does.
type Direction string

// Directions Routr knows.
const (
	AgentToAgent Direction = "agent-to-agent"
	AgentToPSTN  Direction = "agent-to-pstn"
	FromPSTN     Direction = "from-pstn"
	AgentToPeer  Direction = "agent-to-peer"
	PeerToPSTN   Direction = "peer-to-pstn"
)

// Headers routing reads from requests or writes into them.
const (
	HeaderCallDirection = "X-Call-Direction"
	HeaderDODNumber     = "X-DOD-Number"
	HeaderDODPrivacy    = "X-DOD-Privacy"
	HeaderSessionCount  = "X-Session-Count"
)

// Input is what routing needs to know about one out-of-dialog request.
type Input struct {
	// From is who sent the request, as Identify found it.
	From Caller
	// TargetUser and TargetHost come from the Request-URI.
	TargetUser string
	TargetHost string
	// Source is the address the packet came from (not what Via says);
	// access control lists are checked against it. The zero Addr skips
	// the check (callers that already checked).
	Source netip.Addr
	// DisplayName is the display name of the From header.
	DisplayName string
	// Header returns the value of a request header, "" when absent; nil
	// means the request has no headers routing reads.
	Header func(name string) string
	// Turn returns how many requests were balanced over aor before this
	// one (round-robin); nil means always the first.
	Turn func(aor string) uint64
}

func (in Input) header(name string) string {
	if in.Header == nil || name == "" {
		return ""
	}
	return in.Header(name)
}

// Locator returns the current bindings of an address of record, most
// recent first. It is the only view routing has of the location service.
type Locator func(aor string) []location.Binding

// Header is a header the edge adds to the forwarded request.
type Header struct{ Name, Value string }

// Hop is one outbound URI of a trunk, in the order the edge tries them.
type Hop struct {
	// URI is the Request-URI the request takes at this hop.
	URI string
	// User is the trunk URI's user (uri.user), which the trunk registers
	// as; it is not the dialed user.
	User string
	// Host and Port are where the request goes; Port is never 0.
	Host string
	Port int
	// Transport is lower case; never empty.
	Transport string
}

// Decision is what the edge must do. Status 0 means forward, to Targets
// (every one in parallel) or, when Hops is set, to each hop in turn until
// one answers; otherwise answer Status with Reason.
type Decision struct {
	Status    int
	Reason    string
	Direction Direction
	// AOR is the address of record the targets were found under.
	AOR string
	// Callee is the agent called, for agent-to-agent and from-pstn to an
	// agent.
	Callee *resources.Agent
	// Peer is the peer called, for agent-to-peer and from-pstn to a peer.
	Peer *resources.Peer
	// Number is the number called (from-pstn) or calling (to the PSTN).
	Number *resources.Number
	// Trunk is the trunk the call leaves through (to the PSTN): the edge
	// answers its provider's digest challenges with its outbound
	// credentials.
	Trunk   *resources.Trunk
	Targets []location.Binding
	Hops    []Hop
	// Remove names headers of the request that do not go on; Headers are
	// added after they are removed.
	Remove  []string
	Headers []Header
	// Metadata is the extended metadata call.started carries: the
	// caller's, or the Number's for calls from the PSTN.
	Metadata map[string]any
}

// Forward reports whether the decision is to forward.
func (d Decision) Forward() bool { return d.Status == 0 }

func reject(status int, reason string) Decision {
	return Decision{Status: status, Reason: reason}
}

// AOR builds the address of record of a user in a domain.
func AOR(user, domainURI string) string {
	return "sip:" + user + "@" + domainURI
}

// Route decides the route of an out-of-dialog request whose sender was
// identified (and, for agents, peers and trunks with inbound credentials,
// authenticated) by the edge.
//
// The direction follows from who calls and whom they call, as in Routr:
// a trunk calls our Numbers (from-pstn); an agent calls an agent of its
// domain, a peer by username, or else a number that an egress policy of
// its domain sends to a trunk; a peer calls the PSTN naming the Number it
// calls from in X-DOD-Number. Anything else is refused with 403.
func Route(in Input, set *resources.Set, loc Locator) Decision {
	if set == nil {
		return reject(403, "Forbidden")
	}
	if !in.From.Admits(in.Source) {
		return reject(403, "Forbidden")
	}
	switch in.From.Kind {
	case CallerTrunk:
		return fromPSTN(in, set, loc)
	case CallerAgent:
		return fromAgent(in, set, loc)
	case CallerPeer:
		return fromPeer(in, set)
	case CallerConnect:
		return fromConnect(in, set, loc)
	}
	return reject(403, "Forbidden")
}

// fromConnect routes a call of an ephemeral agent, as Routr does: to the
// peer whose aor is the token's aorLink, else to whoever registered the
// Request-URI's address of record in the agent's domain (ephemeral agents
// register under their token's aor).
func fromConnect(in Input, set *resources.Set, loc Locator) Decision {
	home := in.From.Domain
	if home == nil {
		return reject(403, "Forbidden")
	}
	if peers := set.PeersByAOR(in.From.AORLink); len(peers) > 0 {
		d := toPeer(in, peers[0], "", loc)
		if d.Forward() {
			d.Direction = AgentToPeer
			d.Headers = direction(AgentToPeer)
		}
		return d
	}
	domain := home
	if d := set.DomainByURI(in.TargetHost); d != nil {
		domain = d
	}
	if domain.Ref != home.Ref || in.TargetUser == "" {
		return reject(403, "Forbidden")
	}
	aor := AOR(in.TargetUser, domain.DomainURI)
	targets := loc(aor)
	if len(targets) == 0 {
		return reject(480, "Temporarily Unavailable")
	}
	return Decision{
		Direction: AgentToAgent,
		AOR:       aor,
		Callee:    set.Agent(domain.Ref, in.TargetUser),
		Targets:   targets,
		Headers:   direction(AgentToAgent),
	}
}

func fromAgent(in Input, set *resources.Set, loc Locator) Decision {
	caller, home := in.From.Agent, in.From.Domain
	if caller == nil || home == nil {
		return reject(403, "Forbidden")
	}
	domain := home
	if d := set.DomainByURI(in.TargetHost); d != nil {
		domain = d
	}
	if domain.Ref != home.Ref {
		// Agents call within their domain, as in Routr.
		return reject(403, "Forbidden")
	}
	if in.TargetUser == "" {
		return reject(404, "Not Found")
	}
	if callee := set.Agent(domain.Ref, in.TargetUser); callee != nil {
		if !callee.Enabled {
			return reject(404, "Not Found")
		}
		aor := AOR(callee.Username, domain.DomainURI)
		targets := loc(aor)
		if len(targets) == 0 {
			return reject(480, "Temporarily Unavailable")
		}
		return Decision{
			Direction: AgentToAgent,
			AOR:       aor,
			Callee:    callee,
			Targets:   targets,
			Headers:   direction(AgentToAgent),
			Metadata:  caller.Extended,
		}
	}
	if peer := set.PeerByUsername(in.TargetUser); peer != nil {
		d := toPeer(in, peer, "", loc)
		if d.Forward() {
			d.Direction = AgentToPeer
			d.Headers = direction(AgentToPeer)
			d.Metadata = caller.Extended
		}
		return d
	}
	for _, p := range home.EgressPolicies {
		if p.Regexp == nil || !p.Regexp.MatchString(in.TargetUser) {
			continue
		}
		d := toPSTN(in, p.Number, caller.Privacy == resources.PrivacyPrivate)
		if d.Forward() {
			d.Direction = AgentToPSTN
			d.Headers = append(d.Headers, direction(AgentToPSTN)...)
			d.Metadata = caller.Extended
		}
		return d
	}
	return reject(404, "Not Found")
}

func fromPeer(in Input, set *resources.Set) Decision {
	if in.From.Peer == nil {
		return reject(403, "Forbidden")
	}
	if d := set.DomainByURI(in.TargetHost); d != nil && set.Agent(d.Ref, in.TargetUser) != nil {
		// peer-to-agent: Routr names the direction but routes nothing.
		return reject(403, "Forbidden")
	}
	dod := in.header(HeaderDODNumber)
	if dod == "" {
		return reject(400, "Bad Request (missing "+HeaderDODNumber+")")
	}
	number := set.NumberByUser(dod)
	if number == nil {
		return reject(404, "Not Found (no Number "+dod+")")
	}
	private := strings.EqualFold(in.header(HeaderDODPrivacy), "private")
	d := toPSTN(in, number, private)
	if d.Forward() {
		d.Direction = PeerToPSTN
		d.Remove = append(d.Remove, HeaderDODNumber, HeaderDODPrivacy)
		d.Headers = append(d.Headers, direction(PeerToPSTN)...)
		d.Metadata = number.Extended
	}
	return d
}

func fromPSTN(in Input, set *resources.Set, loc Locator) Decision {
	trunk := in.From.Trunk
	number := set.NumberByUser(in.TargetUser)
	if trunk == nil || number == nil {
		return reject(404, "Not Found")
	}
	if number.TrunkRef != trunk.Ref {
		// A trunk only brings calls to its own numbers.
		return reject(403, "Forbidden")
	}
	var d Decision
	if peers := set.PeersByAOR(number.AORLink); len(peers) > 0 {
		d = toPeer(in, peers[0], in.header(number.SessionAffinityHeader), loc)
	} else {
		targets := loc(number.AORLink)
		if len(targets) == 0 {
			return reject(480, "Temporarily Unavailable")
		}
		d = Decision{AOR: number.AORLink, Targets: targets}
		if user, host, ok := splitAOR(number.AORLink); ok {
			if dom := set.DomainByURI(host); dom != nil {
				d.Callee = set.Agent(dom.Ref, user)
			}
		}
	}
	if !d.Forward() {
		return d
	}
	d.Direction = FromPSTN
	d.Number = number
	d.Headers = direction(FromPSTN)
	for _, h := range number.ExtraHeaders {
		d.Headers = append(d.Headers, Header{h.Name, h.Value})
	}
	d.Metadata = number.Extended
	return d
}

func direction(d Direction) []Header {
	return []Header{{HeaderCallDirection, string(d)}}
}

// splitAOR splits "sip:user@host" into user and host.
func splitAOR(aor string) (user, host string, ok bool) {
	if len(aor) < 4 || !strings.EqualFold(aor[:4], "sip:") {
		return "", "", false
	}
	return strings.Cut(aor[4:], "@")
}
