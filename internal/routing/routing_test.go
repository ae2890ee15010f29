package routing

import (
	"testing"
	"time"

	"github.com/routr-go/routr/internal/location"
	"github.com/routr-go/routr/internal/resources"
)

const testResources = `
- apiVersion: v2beta1
  kind: Domain
  ref: domain-01
  metadata: {name: Local}
  spec:
    context: {domainUri: sip.local}
- apiVersion: v2beta1
  kind: Domain
  ref: domain-02
  metadata: {name: Other}
  spec:
    context: {domainUri: other.local}
- apiVersion: v2beta1
  kind: Credentials
  ref: cred-01
  metadata: {name: c}
  spec: {credentials: {username: "1001", password: "x"}}
- apiVersion: v2beta1
  kind: Agent
  ref: agent-01
  metadata: {name: a}
  spec: {username: "1001", domainRef: domain-01, credentialsRef: cred-01}
- apiVersion: v2beta1
  kind: Agent
  ref: agent-02
  metadata: {name: b}
  spec: {username: "1002", domainRef: domain-01, credentialsRef: cred-01}
- apiVersion: v2beta1
  kind: Agent
  ref: agent-03
  metadata: {name: off}
  spec: {username: "1003", domainRef: domain-01, credentialsRef: cred-01, enabled: false}
- apiVersion: v2beta1
  kind: Agent
  ref: agent-04
  metadata: {name: elsewhere}
  spec: {username: "2001", domainRef: domain-02, credentialsRef: cred-01}
`

func testSet(t *testing.T) *resources.Set {
	t.Helper()
	rs, err := resources.Parse("test.yaml", []byte(testResources))
	if err != nil {
		t.Fatal(err)
	}
	set, err := resources.Build(rs)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func TestRouteAgentToAgent(t *testing.T) {
	set := testSet(t)
	local := set.Domain("domain-01")
	caller := set.AgentByRef("agent-01")
	binding := location.Binding{AOR: "sip:1002@sip.local", Contact: "sip:1002@10.0.0.2:5060", Expires: time.Now().Add(time.Hour)}
	loc := func(aor string) []location.Binding {
		if aor == "sip:1002@sip.local" {
			return []location.Binding{binding}
		}
		return nil
	}
	cases := []struct {
		name       string
		in         Input
		wantStatus int
		wantAOR    string
	}{
		{"registered callee by domain", Input{local, caller, "1002", "sip.local"}, 0, "sip:1002@sip.local"},
		{"registered callee by edge address", Input{local, caller, "1002", "127.0.0.1"}, 0, "sip:1002@sip.local"},
		{"callee without binding", Input{local, caller, "1001", "sip.local"}, 480, ""},
		{"no such agent", Input{local, caller, "7777", "sip.local"}, 404, ""},
		{"disabled agent", Input{local, caller, "1003", "sip.local"}, 404, ""},
		{"no user part", Input{local, caller, "", "sip.local"}, 404, ""},
		{"agent of another domain", Input{local, caller, "2001", "other.local"}, 403, ""},
		{"no caller", Input{local, nil, "1002", "sip.local"}, 403, ""},
		{"no caller domain", Input{nil, caller, "1002", "sip.local"}, 403, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Route(c.in, set, loc)
			if d.Status != c.wantStatus {
				t.Fatalf("status %d (%s), want %d", d.Status, d.Reason, c.wantStatus)
			}
			if !d.Forward() {
				if d.Reason == "" {
					t.Fatal("a refusal without a reason phrase")
				}
				return
			}
			if d.AOR != c.wantAOR || len(d.Targets) != 1 || d.Targets[0].Contact != binding.Contact {
				t.Fatalf("decision %+v", d)
			}
			if d.Direction != AgentToAgent || len(d.Headers) != 1 || d.Headers[0] != (Header{"X-Call-Direction", "agent-to-agent"}) {
				t.Fatalf("direction %q headers %v", d.Direction, d.Headers)
			}
		})
	}
}

func TestRouteNilSet(t *testing.T) {
	if d := Route(Input{TargetUser: "1"}, nil, func(string) []location.Binding { return nil }); d.Status != 403 {
		t.Fatalf("nil resources: %d", d.Status)
	}
}

func BenchmarkRoute(b *testing.B) {
	rs, _ := resources.Parse("test.yaml", []byte(testResources))
	set, _ := resources.Build(rs)
	in := Input{set.Domain("domain-01"), set.AgentByRef("agent-01"), "1002", "sip.local"}
	bs := []location.Binding{{AOR: "sip:1002@sip.local", Contact: "sip:1002@10.0.0.2"}}
	loc := func(string) []location.Binding { return bs }
	b.ReportAllocs()
	for b.Loop() {
		if d := Route(in, set, loc); !d.Forward() {
			b.Fatal(d)
		}
	}
}
