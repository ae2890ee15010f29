// Package routing decides where a request goes: a pure function from what
// is known about the request, the resources and the location service to a
// decision the edge carries out.
package routing

import (
	"github.com/routr-go/routr/internal/location"
	"github.com/routr-go/routr/internal/resources"
)

// Direction names the kind of route, as Routr's X-Call-Direction does.
type Direction string

// Directions Routr knows; only agent-to-agent is decided here so far.
const (
	AgentToAgent Direction = "agent-to-agent"
	AgentToPSTN  Direction = "agent-to-pstn"
	FromPSTN     Direction = "from-pstn"
	AgentToPeer  Direction = "agent-to-peer"
	PeerToPSTN   Direction = "peer-to-pstn"
)

// Input is what routing needs to know about one out-of-dialog request.
type Input struct {
	// CallerDomain is the domain the caller authenticated in.
	CallerDomain *resources.Domain
	// Caller is the authenticated agent.
	Caller *resources.Agent
	// TargetUser and TargetHost come from the Request-URI.
	TargetUser string
	TargetHost string
}

// Locator returns the current bindings of an address of record, most
// recent first. It is the only view routing has of the location service.
type Locator func(aor string) []location.Binding

// Header is a header the edge adds to the forwarded request.
type Header struct{ Name, Value string }

// Decision is what the edge must do. Status 0 means forward to Targets;
// otherwise answer Status with Reason.
type Decision struct {
	Status    int
	Reason    string
	Direction Direction
	// AOR is the address of record the targets were found under.
	AOR     string
	Callee  *resources.Agent
	Targets []location.Binding
	Headers []Header
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

// Route decides the route of an out-of-dialog request from an agent.
//
// The target domain is the Request-URI host when it names a domain, else
// the caller's (phones often put the edge's IP address in the
// Request-URI). A target in another domain than the caller's is refused:
// agents call within their domain, as in Routr.
func Route(in Input, set *resources.Set, loc Locator) Decision {
	if set == nil || in.CallerDomain == nil || in.Caller == nil {
		return reject(403, "Forbidden")
	}
	domain := in.CallerDomain
	if d := set.DomainByURI(in.TargetHost); d != nil {
		domain = d
	}
	if domain.Ref != in.CallerDomain.Ref {
		return reject(403, "Forbidden")
	}
	if in.TargetUser == "" {
		return reject(404, "Not Found")
	}
	callee := set.Agent(domain.Ref, in.TargetUser)
	if callee == nil || !callee.Enabled {
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
		Headers:   []Header{{Name: "X-Call-Direction", Value: string(AgentToAgent)}},
	}
}
