package routing

import (
	"net/netip"
	"testing"

	"github.com/routr-go/routr/internal/location"
	"github.com/routr-go/routr/internal/resources"
)

// TestShippedResources pins the decisions the example resources in
// config/resources lead to, the ones users copy first.
func TestShippedResources(t *testing.T) {
	set, err := resources.LoadDir("../../config/resources")
	if err != nil {
		t.Fatal(err)
	}
	loc := func(aor string) []location.Binding {
		switch aor {
		case "sip:1001@sip.local", "sip:1002@sip.local":
			return []location.Binding{bind(aor, "sip:x@192.168.1.10:5060", 0)}
		case "backend:voice_ls":
			return []location.Binding{bind(aor, "sip:voice@192.168.1.20:5060", 0)}
		}
		return nil
	}
	home := netip.MustParseAddr("192.168.1.30")
	away := netip.MustParseAddr("198.51.100.7")
	agent := func(user string) Caller { return Identify(set, user, "sip.local", "sip.local") }
	trunk := Identify(set, "+15551234567", "provider.example.net", "trunk01.sip.local")
	cases := []struct {
		name   string
		in     Input
		status int
		dir    Direction
		to     string // AOR, or the first hop's URI
	}{
		{"agent to agent", Input{From: agent("1002"), TargetUser: "1001", TargetHost: "sip.local", Source: home}, 0, AgentToAgent, "sip:1001@sip.local"},
		{"agent to the voice peer", Input{From: agent("1001"), TargetUser: "voice", TargetHost: "sip.local", Source: home}, 0, AgentToPeer, "backend:voice_ls"},
		{"agent to the PSTN", Input{From: agent("1001"), TargetUser: "+4930123456", TargetHost: "sip.local", Source: home}, 0, AgentToPSTN, "sip:+4930123456@127.0.0.1:5080"},
		{"agent from outside the domain's ACL", Input{From: agent("1001"), TargetUser: "1002", TargetHost: "sip.local", Source: away}, 403, "", ""},
		{"extension nobody has", Input{From: agent("1001"), TargetUser: "555", TargetHost: "sip.local", Source: home}, 404, "", ""},
		{"DID to agent 1001", Input{From: trunk, TargetUser: "+17066041487", TargetHost: "trunk01.sip.local", Source: home}, 0, FromPSTN, "sip:1001@sip.local"},
		{"DID to the voice peer", Input{From: trunk, TargetUser: "+18095863314", TargetHost: "trunk01.sip.local", Source: home}, 0, FromPSTN, "backend:voice_ls"},
		{"DID from outside the trunk's ACL", Input{From: trunk, TargetUser: "+17066041487", TargetHost: "trunk01.sip.local", Source: away}, 403, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Route(c.in, set, loc)
			if d.Status != c.status {
				t.Fatalf("status %d %s, want %d", d.Status, d.Reason, c.status)
			}
			if !d.Forward() {
				return
			}
			to := d.AOR
			if len(d.Hops) > 0 {
				to = d.Hops[0].URI
			}
			if d.Direction != c.dir || to != c.to {
				t.Fatalf("%s to %s, want %s to %s", d.Direction, to, c.dir, c.to)
			}
		})
	}
}
