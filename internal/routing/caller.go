package routing

import (
	"net/netip"

	"github.com/routr-go/routr/internal/resources"
)

// CallerKind says what sent a request.
type CallerKind uint8

// Kinds of caller.
const (
	// CallerUnknown is nobody the resources know: refused.
	CallerUnknown CallerKind = iota
	// CallerAgent is an agent of a domain (Agent may be nil for an unknown
	// user of a known domain, who is challenged like any other).
	CallerAgent
	// CallerPeer is a peer, by its username.
	CallerPeer
	// CallerTrunk is a trunk, by its inbound URI.
	CallerTrunk
	// CallerConnect is an ephemeral agent of Domain that holds a verified
	// X-Connect-Token; it calls AORLink (a peer's aor) or, when no peer
	// has that aor, agents of its domain.
	CallerConnect
)

// Caller is who sent a request, as the resources know it.
type Caller struct {
	Kind   CallerKind
	Domain *resources.Domain
	Agent  *resources.Agent
	Peer   *resources.Peer
	Trunk  *resources.Trunk
	// AORLink is where an ephemeral agent's calls go (CallerConnect).
	AORLink string
}

// Identify names the sender of an out-of-dialog request from its From
// user and host and its Request-URI host:
//
//   - a Request-URI host that is a trunk's inbound.uri means the trunk
//     (Routr's from-pstn check matches the trunk the same way);
//   - a From user that is an agent of the From host's domain means that
//     agent;
//   - a From user that is a peer's username means that peer;
//   - any other user of a known domain is an agent nobody knows, who is
//     challenged and refused like a wrong password.
func Identify(set *resources.Set, fromUser, fromHost, targetHost string) Caller {
	if t := set.TrunkByInboundURI(targetHost); t != nil {
		return Caller{Kind: CallerTrunk, Trunk: t}
	}
	d := set.DomainByURI(fromHost)
	if d != nil {
		if a := set.Agent(d.Ref, fromUser); a != nil {
			return Caller{Kind: CallerAgent, Domain: d, Agent: a}
		}
	}
	if p := set.PeerByUsername(fromUser); p != nil {
		return Caller{Kind: CallerPeer, Peer: p}
	}
	if d != nil {
		return Caller{Kind: CallerAgent, Domain: d}
	}
	return Caller{}
}

// ACL is the access control list that applies to the caller: its
// domain's, the peer's or the trunk's; nil when none does.
func (c Caller) ACL() *resources.AccessControlList {
	switch c.Kind {
	case CallerAgent, CallerConnect:
		if c.Domain != nil {
			return c.Domain.ACL
		}
	case CallerPeer:
		if c.Peer != nil {
			return c.Peer.ACL
		}
	case CallerTrunk:
		if c.Trunk != nil {
			return c.Trunk.ACL
		}
	}
	return nil
}

// Admits reports whether the caller's access control list lets a request
// from src in. Routr stores domain ACLs without checking them; we check
// every one. The zero Addr is admitted (nothing to check).
func (c Caller) Admits(src netip.Addr) bool {
	acl := c.ACL()
	if acl == nil || !src.IsValid() {
		return true
	}
	return acl.Allows(src)
}

// Credentials are the credentials the caller must prove with digest; nil
// means none are required (a trunk without inbound credentials).
func (c Caller) Credentials() *resources.Credentials {
	switch c.Kind {
	case CallerAgent:
		if c.Agent != nil && c.Agent.Enabled {
			return c.Agent.Credentials
		}
	case CallerPeer:
		if c.Peer != nil && c.Peer.Enabled {
			return c.Peer.Credentials
		}
	case CallerTrunk:
		if c.Trunk != nil {
			return c.Trunk.InboundCredentials
		}
	}
	return nil
}

// MustAuthenticate reports whether the caller proves who it is with
// digest: agents and peers always (unknown ones too, so that they get the
// same answer as a wrong password), trunks when they have inbound
// credentials, ephemeral agents never (their token did).
func (c Caller) MustAuthenticate() bool {
	switch c.Kind {
	case CallerTrunk:
		return c.Trunk != nil && c.Trunk.InboundCredentials != nil
	case CallerConnect, CallerUnknown:
		return false
	}
	return true
}
