package routing

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/routr-go/routr/internal/location"
	"github.com/routr-go/routr/internal/resources"
)

func testSet(t testing.TB) *resources.Set {
	t.Helper()
	set, err := resources.LoadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func bind(aor, contact string, sessions int) location.Binding {
	return location.Binding{AOR: aor, Contact: contact, Expires: time.Now().Add(time.Hour), SessionCount: sessions}
}

// testLocator holds 1001 (once), voice (twice) and conference (twice).
func testLocator(aor string) []location.Binding {
	switch aor {
	case "sip:1001@sip.local":
		return []location.Binding{bind(aor, "sip:1001@10.0.0.1:5060", 0)}
	case "backend:voice":
		return []location.Binding{bind(aor, "sip:voice@10.0.0.21:5060", 0), bind(aor, "sip:voice@10.0.0.20:5060", 0)}
	case "backend:media":
		return []location.Binding{bind(aor, "sip:media@192.168.1.9:5060", 0)}
	case "backend:conference":
		return []location.Binding{bind(aor, "sip:conference@10.0.0.30:5060", 7), bind(aor, "sip:conference@10.0.0.31:5060", 2)}
	}
	return nil
}

var (
	lan      = netip.MustParseAddr("10.1.2.3")
	internet = netip.MustParseAddr("198.51.100.7")
	provider = netip.MustParseAddr("203.0.113.9")
)

func headers(kv ...string) func(string) string {
	return func(name string) string {
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i] == name {
				return kv[i+1]
			}
		}
		return ""
	}
}

func TestIdentify(t *testing.T) {
	set := testSet(t)
	cases := []struct {
		name                         string
		fromUser, fromHost, ruriHost string
		kind                         CallerKind
		ref                          string
	}{
		{"agent", "1001", "sip.local", "sip.local", CallerAgent, "agent-01"},
		{"unknown user of a domain", "9999", "sip.local", "sip.local", CallerAgent, ""},
		{"peer by username", "voice", "10.0.0.20", "sip.local", CallerPeer, "peer-voice"},
		{"trunk by Request-URI host", "+15551234567", "provider.example.net", "trunk01.sip.local", CallerTrunk, "trunk-01"},
		{"trunk wins over a domain From", "1001", "sip.local", "TRUNK02.sip.local", CallerTrunk, "trunk-02"},
		{"nobody", "1001", "nowhere.example", "sip.local", CallerUnknown, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Identify(set, c.fromUser, c.fromHost, c.ruriHost)
			if got.Kind != c.kind {
				t.Fatalf("kind %d, want %d", got.Kind, c.kind)
			}
			ref := ""
			switch {
			case got.Agent != nil:
				ref = got.Agent.Ref
			case got.Peer != nil:
				ref = got.Peer.Ref
			case got.Trunk != nil:
				ref = got.Trunk.Ref
			}
			if ref != c.ref {
				t.Fatalf("ref %q, want %q", ref, c.ref)
			}
		})
	}
}

func TestRoute(t *testing.T) {
	set := testSet(t)
	agent := func(user string) Caller {
		return Identify(set, user, "sip.local", "sip.local")
	}
	trunk1 := Identify(set, "+15551234567", "provider.example.net", "trunk01.sip.local")
	trunk2 := Identify(set, "+15551234567", "provider.example.net", "trunk02.sip.local")
	voice := Identify(set, "voice", "10.0.0.20", "sip.local")
	conf := Identify(set, "conference", "10.0.0.30", "sip.local")

	cases := []struct {
		name       string
		in         Input
		wantStatus int
		want       Decision // Direction, AOR, Metadata; Targets by Contact; Hops by URI
		headers    []Header
		remove     []string
	}{
		// agent-to-agent
		{name: "agent to agent by domain", in: Input{From: agent("1002"), TargetUser: "1001", TargetHost: "sip.local", Source: lan},
			want:    Decision{Direction: AgentToAgent, AOR: "sip:1001@sip.local", Targets: testLocator("sip:1001@sip.local")},
			headers: []Header{{"X-Call-Direction", "agent-to-agent"}}},
		{name: "agent to agent by edge address", in: Input{From: agent("1002"), TargetUser: "1001", TargetHost: "127.0.0.1"},
			want:    Decision{Direction: AgentToAgent, AOR: "sip:1001@sip.local", Targets: testLocator("sip:1001@sip.local")},
			headers: []Header{{"X-Call-Direction", "agent-to-agent"}}},
		{name: "agent without binding", in: Input{From: agent("1001"), TargetUser: "1002", TargetHost: "sip.local"}, wantStatus: 480},
		{name: "no such agent nor number", in: Input{From: agent("1001"), TargetUser: "7777", TargetHost: "sip.local"}, wantStatus: 404},
		{name: "disabled agent", in: Input{From: agent("1001"), TargetUser: "1003", TargetHost: "sip.local"}, wantStatus: 404},
		{name: "no user part", in: Input{From: agent("1001"), TargetUser: "", TargetHost: "sip.local"}, wantStatus: 404},
		{name: "agent of another domain", in: Input{From: agent("1001"), TargetUser: "2001", TargetHost: "other.local"}, wantStatus: 403},
		{name: "unknown agent", in: Input{From: agent("9999"), TargetUser: "1001", TargetHost: "sip.local"}, wantStatus: 403},
		{name: "nobody", in: Input{TargetUser: "1001", TargetHost: "sip.local"}, wantStatus: 403},
		// domain ACL
		{name: "agent from outside the domain ACL", in: Input{From: agent("1002"), TargetUser: "1001", TargetHost: "sip.local", Source: internet}, wantStatus: 403},
		// agent-to-pstn
		{name: "agent to pstn, first matching policy", in: Input{From: agent("1001"), TargetUser: "+12025550123", TargetHost: "sip.local", DisplayName: "John Doe", Source: lan},
			want: Decision{Direction: AgentToPSTN, Hops: []Hop{{URI: "sip:+12025550123@us.example.net:5060", Host: "us.example.net", Port: 5060, Transport: "udp"}},
				Metadata: map[string]any{"accountRef": "acc-1001"}},
			remove: []string{"Privacy", "Remote-Party-ID", "P-Asserted-Identity", "P-Preferred-Identity"},
			headers: []Header{{"Privacy", "none"}, {"Remote-Party-ID", "<sip:+12025550100@us.example.net>;screen=yes;party=calling"},
				{"P-Asserted-Identity", `"John Doe" <sip:+12025550100@us.example.net;user=phone>`}, {"X-Call-Direction", "agent-to-pstn"}}},
		{name: "agent to pstn, second policy, hops by priority and weight", in: Input{From: agent("1001"), TargetUser: "5551234", TargetHost: "sip.local"},
			want: Decision{Direction: AgentToPSTN, Hops: []Hop{
				{URI: "sip:5551234@gw1.example.net:5060", Host: "gw1.example.net", Port: 5060, Transport: "udp"},
				{URI: "sip:5551234@gw2.example.net:5080", Host: "gw2.example.net", Port: 5080, Transport: "udp"},
				{URI: "sip:5551234@backup.example.net:5070;transport=tcp", Host: "backup.example.net", Port: 5070, Transport: "tcp"},
			}, Metadata: map[string]any{"accountRef": "acc-1001"}},
			remove: []string{"Privacy", "Remote-Party-ID", "P-Asserted-Identity", "P-Preferred-Identity"},
			headers: []Header{{"Privacy", "none"}, {"Remote-Party-ID", "<sip:+17066041487@gw1.example.net>;screen=yes;party=calling"},
				{"P-Asserted-Identity", "<sip:+17066041487@gw1.example.net;user=phone>"}, {"X-Call-Direction", "agent-to-pstn"}}},
		{name: "private agent to pstn", in: Input{From: agent("1005"), TargetUser: "+12025550123", TargetHost: "sip.local"},
			want:   Decision{Direction: AgentToPSTN, Hops: []Hop{{URI: "sip:+12025550123@us.example.net:5060", Host: "us.example.net", Port: 5060, Transport: "udp"}}},
			remove: []string{"Privacy", "Remote-Party-ID", "P-Asserted-Identity", "P-Preferred-Identity"},
			headers: []Header{{"Privacy", "id"}, {"Remote-Party-ID", "<sip:+12025550100@us.example.net>;screen=yes;party=calling;privacy=full"},
				{"P-Asserted-Identity", "<sip:+12025550100@us.example.net;user=phone>"}, {"X-Call-Direction", "agent-to-pstn"}}},
		// agent-to-peer
		{name: "agent to peer", in: Input{From: agent("1001"), TargetUser: "voice", TargetHost: "sip.local"},
			want:    Decision{Direction: AgentToPeer, AOR: "backend:voice", Targets: []location.Binding{bind("backend:voice", "sip:voice@10.0.0.20:5060", 0)}, Metadata: map[string]any{"accountRef": "acc-1001"}},
			headers: []Header{{"X-Call-Direction", "agent-to-peer"}}},
		{name: "agent to peer at its contactAddr", in: Input{From: agent("1001"), TargetUser: "media", TargetHost: "sip.local"},
			want:    Decision{Direction: AgentToPeer, AOR: "backend:media", Targets: []location.Binding{bind("backend:media", "sip:media@10.0.0.99:5070", 0)}, Metadata: map[string]any{"accountRef": "acc-1001"}},
			headers: []Header{{"X-Call-Direction", "agent-to-peer"}}},
		// from-pstn
		{name: "from pstn to an agent", in: Input{From: trunk1, TargetUser: "+17066041487", TargetHost: "trunk01.sip.local", Source: provider},
			want:    Decision{Direction: FromPSTN, AOR: "sip:1001@sip.local", Targets: testLocator("sip:1001@sip.local"), Metadata: map[string]any{"accountRef": "acc-main"}},
			headers: []Header{{"X-Call-Direction", "from-pstn"}, {"X-Tenant", "acme"}}},
		{name: "from pstn, number without +", in: Input{From: trunk1, TargetUser: "17066041487", TargetHost: "trunk01.sip.local", Source: provider},
			want:    Decision{Direction: FromPSTN, AOR: "sip:1001@sip.local", Targets: testLocator("sip:1001@sip.local"), Metadata: map[string]any{"accountRef": "acc-main"}},
			headers: []Header{{"X-Call-Direction", "from-pstn"}, {"X-Tenant", "acme"}}},
		{name: "from pstn to a peer with affinity", in: Input{From: trunk1, TargetUser: "+18095863314", TargetHost: "trunk01.sip.local", Header: headers("X-Room-Id", "room-1")},
			want:    Decision{Direction: FromPSTN, AOR: "backend:voice", Targets: []location.Binding{bind("backend:voice", "sip:voice@10.0.0.20:5060", 0)}},
			headers: []Header{{"X-Call-Direction", "from-pstn"}}},
		{name: "from pstn from outside the trunk ACL", in: Input{From: trunk1, TargetUser: "+17066041487", TargetHost: "trunk01.sip.local", Source: internet}, wantStatus: 403},
		{name: "from pstn to another trunk's number", in: Input{From: trunk2, TargetUser: "+17066041487", TargetHost: "trunk02.sip.local"}, wantStatus: 403},
		{name: "from pstn to an unknown number", in: Input{From: trunk1, TargetUser: "+10000000000", TargetHost: "trunk01.sip.local"}, wantStatus: 404},
		{name: "from pstn to an agent without binding", in: Input{From: trunk1, TargetUser: "+18005550199", TargetHost: "trunk01.sip.local"}, wantStatus: 480},
		// peer-to-pstn
		{name: "peer to pstn", in: Input{From: voice, TargetUser: "+4930123456", TargetHost: "sip.local", Source: lan, Header: headers("X-DOD-Number", "+17066041487")},
			want: Decision{Direction: PeerToPSTN, Hops: []Hop{
				{URI: "sip:+4930123456@gw1.example.net:5060", Host: "gw1.example.net", Port: 5060, Transport: "udp"},
				{URI: "sip:+4930123456@gw2.example.net:5080", Host: "gw2.example.net", Port: 5080, Transport: "udp"},
				{URI: "sip:+4930123456@backup.example.net:5070;transport=tcp", Host: "backup.example.net", Port: 5070, Transport: "tcp"},
			}, Metadata: map[string]any{"accountRef": "acc-main"}},
			remove: []string{"Privacy", "Remote-Party-ID", "P-Asserted-Identity", "P-Preferred-Identity", "X-DOD-Number", "X-DOD-Privacy"},
			headers: []Header{{"Privacy", "none"}, {"Remote-Party-ID", "<sip:+17066041487@gw1.example.net>;screen=yes;party=calling"},
				{"P-Asserted-Identity", "<sip:+17066041487@gw1.example.net;user=phone>"}, {"X-Call-Direction", "peer-to-pstn"}}},
		{name: "private peer to pstn", in: Input{From: conf, TargetUser: "+4930123456", TargetHost: "sip.local", Header: headers("X-DOD-Number", "+12025550100", "X-DOD-Privacy", "Private")},
			want:   Decision{Direction: PeerToPSTN, Hops: []Hop{{URI: "sip:+4930123456@us.example.net:5060", Host: "us.example.net", Port: 5060, Transport: "udp"}}},
			remove: []string{"Privacy", "Remote-Party-ID", "P-Asserted-Identity", "P-Preferred-Identity", "X-DOD-Number", "X-DOD-Privacy"},
			headers: []Header{{"Privacy", "id"}, {"Remote-Party-ID", "<sip:+12025550100@us.example.net>;screen=yes;party=calling;privacy=full"},
				{"P-Asserted-Identity", "<sip:+12025550100@us.example.net;user=phone>"}, {"X-Call-Direction", "peer-to-pstn"}}},
		{name: "peer to pstn without X-DOD-Number", in: Input{From: voice, TargetUser: "+4930123456", TargetHost: "sip.local"}, wantStatus: 400},
		{name: "peer to pstn from an unknown number", in: Input{From: voice, TargetUser: "+4930123456", TargetHost: "sip.local", Header: headers("X-DOD-Number", "+999")}, wantStatus: 404},
		{name: "peer from outside its ACL", in: Input{From: voice, TargetUser: "+4930123456", TargetHost: "sip.local", Source: internet, Header: headers("X-DOD-Number", "+17066041487")}, wantStatus: 403},
		// ephemeral agents (X-Connect-Token)
		{name: "connect to its peer", in: Input{From: Caller{Kind: CallerConnect, Domain: set.Domain("domain-01"), AORLink: "backend:voice"}, TargetUser: "anything", TargetHost: "sip.local", Source: lan},
			want:    Decision{Direction: AgentToPeer, AOR: "backend:voice", Targets: []location.Binding{bind("backend:voice", "sip:voice@10.0.0.20:5060", 0)}},
			headers: []Header{{"X-Call-Direction", "agent-to-peer"}}},
		{name: "connect to a registered AOR", in: Input{From: Caller{Kind: CallerConnect, Domain: set.Domain("domain-01"), AORLink: "sip:nobody@sip.local"}, TargetUser: "1001", TargetHost: "sip.local"},
			want:    Decision{Direction: AgentToAgent, AOR: "sip:1001@sip.local", Targets: testLocator("sip:1001@sip.local")},
			headers: []Header{{"X-Call-Direction", "agent-to-agent"}}},
		{name: "connect to nobody registered", in: Input{From: Caller{Kind: CallerConnect, Domain: set.Domain("domain-01")}, TargetUser: "eph-9", TargetHost: "sip.local"}, wantStatus: 480},
		{name: "connect to another domain", in: Input{From: Caller{Kind: CallerConnect, Domain: set.Domain("domain-01")}, TargetUser: "2001", TargetHost: "other.local"}, wantStatus: 403},
		{name: "connect without domain", in: Input{From: Caller{Kind: CallerConnect}, TargetUser: "1001", TargetHost: "sip.local"}, wantStatus: 403},
		{name: "connect from outside the domain ACL", in: Input{From: Caller{Kind: CallerConnect, Domain: set.Domain("domain-01"), AORLink: "backend:voice"}, TargetUser: "x", TargetHost: "sip.local", Source: internet}, wantStatus: 403},
		{name: "peer to agent (unsupported, as in Routr)", in: Input{From: voice, TargetUser: "1001", TargetHost: "sip.local"}, wantStatus: 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Route(c.in, set, testLocator)
			if d.Status != c.wantStatus {
				t.Fatalf("status %d (%s), want %d", d.Status, d.Reason, c.wantStatus)
			}
			if !d.Forward() {
				if d.Reason == "" {
					t.Fatal("a refusal without a reason phrase")
				}
				return
			}
			if d.Direction != c.want.Direction || d.AOR != c.want.AOR {
				t.Fatalf("direction %q AOR %q, want %q %q", d.Direction, d.AOR, c.want.Direction, c.want.AOR)
			}
			contacts := func(bs []location.Binding) (out []string) {
				for _, b := range bs {
					out = append(out, b.Contact)
				}
				return out
			}
			if !slices.Equal(contacts(d.Targets), contacts(c.want.Targets)) {
				t.Fatalf("targets %v, want %v", contacts(d.Targets), contacts(c.want.Targets))
			}
			if !slices.Equal(d.Hops, c.want.Hops) {
				t.Fatalf("hops %+v\nwant %+v", d.Hops, c.want.Hops)
			}
			if !slices.Equal(d.Headers, c.headers) {
				t.Fatalf("headers %q\nwant %q", d.Headers, c.headers)
			}
			if !slices.Equal(d.Remove, c.remove) {
				t.Fatalf("removed %q, want %q", d.Remove, c.remove)
			}
			if len(d.Metadata) != 0 || len(c.want.Metadata) != 0 {
				if !reflect.DeepEqual(d.Metadata, c.want.Metadata) {
					t.Fatalf("metadata %v, want %v", d.Metadata, c.want.Metadata)
				}
			}
			if len(d.Hops) > 0 && (d.Trunk == nil || d.Number == nil) {
				t.Fatal("a route to the PSTN without its trunk and number")
			}
		})
	}
}

func TestBalancing(t *testing.T) {
	set := testSet(t)
	from := Identify(set, "1001", "sip.local", "sip.local")
	turns := map[string]uint64{}
	in := Input{From: from, TargetUser: "voice", TargetHost: "sip.local",
		Turn: func(aor string) uint64 { n := turns[aor]; turns[aor]++; return n }}
	var got []string
	for range 4 {
		d := Route(in, set, testLocator)
		got = append(got, d.Targets[0].Contact)
	}
	want := []string{"sip:voice@10.0.0.20:5060", "sip:voice@10.0.0.21:5060", "sip:voice@10.0.0.20:5060", "sip:voice@10.0.0.21:5060"}
	if !slices.Equal(got, want) {
		t.Fatalf("round-robin: %v", got)
	}

	in.TargetUser = "conference"
	for range 3 {
		if d := Route(in, set, testLocator); d.Targets[0].Contact != "sip:conference@10.0.0.31:5060" {
			t.Fatalf("least-sessions picked %s", d.Targets[0].Contact)
		}
	}

	trunk := Identify(set, "+15551234567", "provider.example.net", "trunk01.sip.local")
	pstn := Input{From: trunk, TargetUser: "+18095863314", TargetHost: "trunk01.sip.local", Turn: in.Turn}
	for _, room := range []string{"a", "b", "c", "d"} {
		pstn.Header = headers("X-Room-Id", room)
		first := Route(pstn, set, testLocator).Targets[0].Contact
		for range 3 {
			if again := Route(pstn, set, testLocator).Targets[0].Contact; again != first {
				t.Fatalf("room %s went to %s, then %s", room, first, again)
			}
		}
	}
}

func TestHopsWeight(t *testing.T) {
	set := testSet(t)
	trunk := set.Trunk("trunk-01")
	firsts := map[string]int{}
	for turn := range uint64(40) {
		hops := Hops(trunk, "1", turn)
		if len(hops) != 3 || hops[2].Host != "backup.example.net" {
			t.Fatalf("turn %d: %+v", turn, hops)
		}
		firsts[hops[0].Host]++
	}
	if firsts["gw1.example.net"] != 30 || firsts["gw2.example.net"] != 10 {
		t.Fatalf("first hops by weight 30:10 over 40 turns: %v", firsts)
	}
}

func BenchmarkRoute(b *testing.B) {
	set := testSet(b)
	in := Input{From: Identify(set, "1002", "sip.local", "sip.local"), TargetUser: "1001", TargetHost: "sip.local", Source: lan}
	b.ReportAllocs()
	for b.Loop() {
		if d := Route(in, set, testLocator); !d.Forward() {
			b.Fatal(d)
		}
	}
}
