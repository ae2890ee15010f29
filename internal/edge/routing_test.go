package edge

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/routr-go/routr/internal/auth"
	"github.com/routr-go/routr/internal/events"
	"github.com/routr-go/routr/internal/resources"
	"github.com/routr-go/routr/internal/siptest"
)

// routingResources are the resources of the routing tests: two provider
// URIs on the ports of two test phones, a trunk whose ACL refuses
// loopback, a peer, and numbers in and out. %[1]d and %[2]d are the
// provider ports.
const routingResources = `
- {apiVersion: v2beta1, kind: AccessControlList, ref: acl-lo, metadata: {name: lo},
   spec: {accessControlList: {deny: [0.0.0.0/0], allow: [127.0.0.0/8]}}}
- {apiVersion: v2beta1, kind: AccessControlList, ref: acl-not-lo, metadata: {name: not lo},
   spec: {accessControlList: {deny: [127.0.0.0/8], allow: [10.0.0.0/8]}}}
- apiVersion: v2beta1
  kind: Domain
  ref: domain-01
  metadata: {name: Local}
  spec:
    accessControlListRef: acl-lo
    context:
      domainUri: sip.local
      egressPolicies:
        - {rule: "^\\+?[0-9]{7,15}$", numberRef: number-out}
- {apiVersion: v2beta1, kind: Credentials, ref: cred-agent, metadata: {name: a}, spec: {credentials: {username: "1001", password: "1234"}}}
- {apiVersion: v2beta1, kind: Credentials, ref: cred-agent2, metadata: {name: b}, spec: {credentials: {username: "1002", password: "1234"}}}
- {apiVersion: v2beta1, kind: Credentials, ref: cred-agent3, metadata: {name: c}, spec: {credentials: {username: "1003", password: "1234"}}}
- {apiVersion: v2beta1, kind: Credentials, ref: cred-voice, metadata: {name: v}, spec: {credentials: {username: voice, password: "1234"}}}
- {apiVersion: v2beta1, kind: Credentials, ref: cred-out, metadata: {name: o}, spec: {credentials: {username: acct, password: s3cr3t-out}}}
- {apiVersion: v2beta1, kind: Agent, ref: agent-01, metadata: {name: a}, extended: {accountRef: acc-1001},
   spec: {username: "1001", domainRef: domain-01, credentialsRef: cred-agent}}
- {apiVersion: v2beta1, kind: Agent, ref: agent-02, metadata: {name: b}, spec: {username: "1002", domainRef: domain-01, credentialsRef: cred-agent2}}
- {apiVersion: v2beta1, kind: Agent, ref: agent-03, metadata: {name: c}, spec: {username: "1003", domainRef: domain-01, credentialsRef: cred-agent3, privacy: Private}}
- apiVersion: v2beta1
  kind: Trunk
  ref: trunk-01
  metadata: {name: Provider}
  spec:
    inbound: {uri: trunk01.test, accessControlListRef: acl-lo}
    outbound:
      credentialsRef: cred-out
      uris:
        - {uri: {host: 127.0.0.1, port: %[2]d}, priority: 20, weight: 10}
        - {uri: {host: 127.0.0.1, port: %[1]d}, priority: 10, weight: 10}
- apiVersion: v2beta1
  kind: Trunk
  ref: trunk-02
  metadata: {name: Elsewhere}
  spec:
    inbound: {uri: trunk02.test, accessControlListRef: acl-not-lo}
    outbound: {uris: [{uri: {host: 127.0.0.1, port: %[1]d}}]}
- {apiVersion: v2beta1, kind: Number, ref: number-in, metadata: {name: in}, extended: {accountRef: acc-7},
   spec: {trunkRef: trunk-01, location: {telUrl: "tel:+17066041487", aorLink: "sip:1001@sip.local", extraHeaders: [{name: X-Tenant, value: acme}]}}}
- {apiVersion: v2beta1, kind: Number, ref: number-peer, metadata: {name: peer},
   spec: {trunkRef: trunk-01, location: {telUrl: "tel:+18095863314", aorLink: "backend:voice"}}}
- {apiVersion: v2beta1, kind: Number, ref: number-out, metadata: {name: out},
   spec: {trunkRef: trunk-01, location: {telUrl: "tel:+15550001111", aorLink: "sip:1002@sip.local"}}}
- {apiVersion: v2beta1, kind: Number, ref: number-denied, metadata: {name: denied},
   spec: {trunkRef: trunk-02, location: {telUrl: "tel:+15550002222", aorLink: "sip:1001@sip.local"}}}
- {apiVersion: v2beta1, kind: Peer, ref: peer-voice, metadata: {name: voice},
   spec: {username: voice, aor: "backend:voice", credentialsRef: cred-voice, loadBalancing: {algorithm: round-robin}}}
- {apiVersion: v2beta1, kind: Credentials, ref: cred-conf, metadata: {name: conf}, spec: {credentials: {username: conf, password: "1234"}}}
- {apiVersion: v2beta1, kind: Peer, ref: peer-conf, metadata: {name: conference},
   spec: {username: conf, aor: "backend:conf", credentialsRef: cred-conf, loadBalancing: {algorithm: least-sessions, withSessionAffinity: true}}}
- {apiVersion: v2beta1, kind: Number, ref: number-conf, metadata: {name: conf},
   spec: {trunkRef: trunk-01, location: {telUrl: "tel:+18005550123", aorLink: "backend:conf", sessionAffinityHeader: X-Room-Id}}}
- {apiVersion: v2beta1, kind: Credentials, ref: cred-in, metadata: {name: in}, spec: {credentials: {username: provider, password: in-s3cr3t}}}
- apiVersion: v2beta1
  kind: Trunk
  ref: trunk-03
  metadata: {name: Authenticating provider}
  spec:
    inbound: {uri: trunk03.test, credentialsRef: cred-in}
    outbound: {uris: [{uri: {host: 127.0.0.1, port: %[1]d}}]}
- {apiVersion: v2beta1, kind: Number, ref: number-auth, metadata: {name: auth},
   spec: {trunkRef: trunk-03, location: {telUrl: "tel:+17066040000", aorLink: "sip:1001@sip.local"}}}
- apiVersion: v2beta1
  kind: Domain
  ref: domain-locked
  metadata: {name: Locked}
  spec: {accessControlListRef: acl-not-lo, context: {domainUri: locked.test}}
- {apiVersion: v2beta1, kind: Agent, ref: agent-locked, metadata: {name: locked}, spec: {username: "3001", domainRef: domain-locked, credentialsRef: cred-agent}}
`

// routingEdge is an edge serving routingResources, with two provider
// phones listening on the trunk's outbound URIs.
type routingEdge struct {
	*testEdge
	primary, secondary *siptest.Phone
}

func startRoutingEdge(t *testing.T) *routingEdge {
	t.Helper()
	return withRoutingResources(t, startEdge(t))
}

// withRoutingResources opens the provider phones and has te serve
// routingResources.
func withRoutingResources(t *testing.T, te *testEdge) *routingEdge {
	t.Helper()
	re := &routingEdge{testEdge: te}
	re.primary = te.other(t, "gw1", "provider.test")
	re.secondary = te.other(t, "gw2", "provider.test")
	rs, err := resources.Parse("routing.yaml", fmt.Appendf(nil, routingResources, re.primary.Port(), re.secondary.Port()))
	if err != nil {
		t.Fatal(err)
	}
	set, err := resources.Build(rs)
	if err != nil {
		t.Fatal(err)
	}
	te.srv.opts.Resources.Store(set)
	return re
}

// other opens a UDP phone that is no agent of sip.local.
func (te *testEdge) other(t *testing.T, user, domain string) *siptest.Phone {
	t.Helper()
	p, err := siptest.NewPhone("udp", user, domain, "1234", te.udp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// fromTrunk sends an INVITE from a trunk phone to number at the trunk's
// inbound host, as a provider does.
func fromTrunk(t *testing.T, trunk *siptest.Phone, number, host, callID string) *sip.Request {
	t.Helper()
	inv := trunk.NewRequest(sip.INVITE, "sip:"+number+"@"+host, callID)
	if err := trunk.Send(inv); err != nil {
		t.Fatal(err)
	}
	return inv
}

func hdr(m interface{ GetHeader(string) sip.Header }, name string) string {
	if h := m.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}

func TestFromPSTNReachesAgent(t *testing.T) {
	re := startRoutingEdge(t)
	agent := re.phone(t, "udp", "1001")
	mustRegister(t, agent)
	trunk := re.other(t, "+15551234567", "provider.test")

	inv := fromTrunk(t, trunk, "+17066041487", "trunk01.test", "pstn-in-1")
	got, err := agent.Request(sip.INVITE, wait)
	if err != nil {
		t.Fatal(err)
	}
	if v := hdr(got, "X-Call-Direction"); v != "from-pstn" {
		t.Fatalf("X-Call-Direction %q", v)
	}
	if v := hdr(got, "X-Tenant"); v != "acme" {
		t.Fatalf("Number's extra header X-Tenant %q", v)
	}
	c := (&siptest.Call{Caller: trunk, Callee: agent, CallID: "pstn-in-1", Invite: inv, Received: got}).Bind(t)
	ok := c.Answer()
	c.Hangup(ok, false)
	re.wantEvents(t, "pstn-in-1", events.TypeCallStarted, events.TypeCallAnswered, events.TypeCallEnded)
	if st := re.rec.find(events.TypeCallStarted, "callId", "pstn-in-1"); st["accountRef"] != "acc-7" {
		t.Fatalf("call.started without the Number's metadata: %v", st)
	}
}

func TestFromPSTNRefusals(t *testing.T) {
	re := startRoutingEdge(t)
	trunk := re.other(t, "+15551234567", "provider.test")
	cases := []struct {
		name, number, host string
		want               int
	}{
		{"source outside the trunk's ACL", "+15550002222", "trunk02.test", 403},
		{"another trunk's number", "+15550002222", "trunk01.test", 403},
		{"unknown number", "+19999999999", "trunk01.test", 404},
		{"agent not registered", "+15550001111", "trunk01.test", 480},
		{"unknown trunk and caller", "+17066041487", "trunk09.test", 403},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			callID := fmt.Sprintf("pstn-refused-%d", i)
			fromTrunk(t, trunk, c.number, c.host, callID)
			res, err := trunk.Response(sip.INVITE, wait)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != c.want {
				t.Fatalf("got %d %s, want %d", res.StatusCode, res.Reason, c.want)
			}
			if evs := re.rec.byCall(callID); len(evs) != 0 {
				t.Fatalf("a refused call has events %v", evs)
			}
		})
	}
}

// checkToPSTN checks what the provider sees of a call leaving through
// trunk-01 from number-out.
func checkToPSTN(t *testing.T, got *sip.Request, dialed string, port int, privacy string) {
	t.Helper()
	if got.Recipient.User != dialed || got.Recipient.Host != "127.0.0.1" || got.Recipient.Port != port {
		t.Fatalf("Request-URI %s, want %s at 127.0.0.1:%d", got.Recipient.String(), dialed, port)
	}
	want := map[string]string{
		"X-Call-Direction":    "agent-to-pstn",
		"Privacy":             privacy,
		"P-Asserted-Identity": "<sip:+15550001111@127.0.0.1;user=phone>",
	}
	for name, v := range want {
		if g := hdr(got, name); g != v {
			t.Fatalf("%s = %q, want %q", name, g, v)
		}
	}
	if rpid := hdr(got, "Remote-Party-ID"); !strings.HasPrefix(rpid, "<sip:+15550001111@127.0.0.1>;screen=yes;party=calling") {
		t.Fatalf("Remote-Party-ID %q", rpid)
	}
	if got.GetHeader("Proxy-Authorization") != nil && strings.Contains(hdr(got, "Proxy-Authorization"), `username="1001"`) {
		t.Fatal("the agent's credentials reached the provider")
	}
	if strings.Contains(got.String(), "s3cr3t") || got.GetHeader("X-Gateway-Auth") != nil {
		t.Fatal("the trunk's password left the edge")
	}
}

func TestAgentToPSTNAuthenticatesWithProvider(t *testing.T) {
	re := startRoutingEdge(t)
	a := re.phone(t, "udp", "1001")
	c := siptest.Dial(t, a, re.primary, "+4930123456", "pstn-out-1")
	checkToPSTN(t, c.Received, "+4930123456", re.primary.Port(), "none")

	// The provider challenges; the edge answers with the trunk's
	// credentials, the caller never sees the 407.
	provider, err := auth.New(auth.Config{Algorithms: []string{"MD5"}})
	if err != nil {
		t.Fatal(err)
	}
	ch := re.primary.Reply(c.Received, 407, "Proxy Authentication Required")
	for _, v := range provider.Challenge("provider.test", false) {
		ch.AppendHeader(sip.NewHeader("Proxy-Authenticate", v))
	}
	_ = re.primary.Send(ch)
	again, err := re.primary.Request(sip.INVITE, wait)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := auth.ParseCredentials(hdr(again, "Proxy-Authorization"))
	if err != nil {
		t.Fatal(err)
	}
	if cred.Username != "acct" || provider.Verify(cred, "INVITE", "provider.test", "s3cr3t-out") != auth.OK {
		t.Fatalf("the provider cannot verify %q", hdr(again, "Proxy-Authorization"))
	}
	checkToPSTN(t, again, "+4930123456", re.primary.Port(), "none")
	c.Received = again
	ok := c.Answer()
	c.Hangup(ok, true)
	re.wantEvents(t, c.CallID, events.TypeCallStarted, events.TypeCallAnswered, events.TypeCallEnded)
	st := re.rec.find(events.TypeCallStarted, "callId", c.CallID)
	if st["accountRef"] != "acc-1001" {
		t.Fatalf("call.started without the caller's metadata: %v", st)
	}
	for _, e := range re.rec.evs {
		if strings.Contains(string(e.Body), "s3cr3t") {
			t.Fatalf("an event carries the trunk's password: %s", e.Body)
		}
	}
}

func TestAgentToPSTNPrivate(t *testing.T) {
	re := startRoutingEdge(t)
	a := re.phone(t, "udp", "1003")
	c := siptest.Dial(t, a, re.primary, "5551234", "pstn-out-private")
	checkToPSTN(t, c.Received, "5551234", re.primary.Port(), "id")
	if rpid := hdr(c.Received, "Remote-Party-ID"); !strings.HasSuffix(rpid, ";privacy=full") {
		t.Fatalf("Remote-Party-ID of a private agent: %q", rpid)
	}
	_ = re.primary.Send(re.primary.Reply(c.Received, 486, "Busy Here"))
	if r, err := a.Response(sip.INVITE, wait); err != nil || r.StatusCode != 486 {
		t.Fatalf("caller got %v %v, want 486", r, err)
	}
	re.wantEvents(t, c.CallID, events.TypeCallStarted, events.TypeCallEnded)
}

func TestAgentToPSTNFailover(t *testing.T) {
	re := startRoutingEdge(t)
	t.Run("503", func(t *testing.T) {
		a := re.phone(t, "udp", "1001")
		c := siptest.Dial(t, a, re.primary, "+4930123456", "pstn-failover-503")
		_ = re.primary.Send(re.primary.Reply(c.Received, 503, "Service Unavailable"))
		got, err := re.secondary.Request(sip.INVITE, wait)
		if err != nil {
			t.Fatal(err)
		}
		checkToPSTN(t, got, "+4930123456", re.secondary.Port(), "none")
		c.Callee, c.Received = re.secondary, got
		ok := c.Answer()
		c.Hangup(ok, false)
		re.wantEvents(t, c.CallID, events.TypeCallStarted, events.TypeCallAnswered, events.TypeCallEnded)
	})
	t.Run("silent", func(t *testing.T) {
		a := re.phone(t, "udp", "1002")
		c := siptest.Dial(t, a, re.primary, "+4930123457", "pstn-failover-silent")
		// The primary says nothing at all.
		got, err := re.secondary.Request(sip.INVITE, hopSilence+wait)
		if err != nil {
			t.Fatal(err)
		}
		_ = re.secondary.Send(re.secondary.Reply(got, 404, "Not Found"))
		if r, err := a.Response(sip.INVITE, wait); err != nil || r.StatusCode != 404 {
			t.Fatalf("caller got %v %v, want the secondary's 404", r, err)
		}
		re.wantEvents(t, c.CallID, events.TypeCallStarted, events.TypeCallEnded)
	})
}

// registerPeer registers an instance of the voice peer.
func registerPeer(t *testing.T, re *routingEdge) *siptest.Phone {
	t.Helper()
	return registerPeerAs(t, re, "voice", 3)
}

// registerPeerAs registers an instance of the peer user that reports
// sessions in X-Session-Count.
func registerPeerAs(t *testing.T, re *routingEdge, user string, sessions int) *siptest.Phone {
	t.Helper()
	p := re.other(t, user, "sip.local")
	req := p.NewRequest(sip.REGISTER, "sip:sip.local", "reg-"+p.Tag)
	req.AppendHeader(sip.NewHeader("Expires", "300"))
	req.AppendHeader(sip.NewHeader("X-Session-Count", fmt.Sprint(sessions)))
	_ = p.Send(req)
	ch, err := p.Response(sip.REGISTER, wait)
	if err != nil || ch.StatusCode != 401 {
		t.Fatalf("peer REGISTER: %v %v, want 401", ch, err)
	}
	authd, err := p.Authorize(req, ch, "")
	if err != nil {
		t.Fatal(err)
	}
	_ = p.Send(authd)
	if ok, err := p.Response(sip.REGISTER, wait); err != nil || ok.StatusCode != 200 {
		t.Fatalf("peer REGISTER: %v %v", ok, err)
	}
	return p
}

func TestPeersRegisterAndRoundRobin(t *testing.T) {
	re := startRoutingEdge(t)
	v1, v2 := registerPeer(t, re), registerPeer(t, re)
	bs, _ := re.loc.Lookup(context.Background(), "backend:voice")
	if len(bs) != 2 || bs[0].SessionCount != 3 {
		t.Fatalf("bindings under the peer's aor: %+v", bs)
	}
	a := re.phone(t, "udp", "1001")
	var rang []*siptest.Phone
	for i := range 4 {
		callID := fmt.Sprintf("to-peer-%d", i)
		siptest.Dial(t, a, nil, "voice", callID)
		got, at, err := siptest.FirstRequest(sip.INVITE, wait, v1, v2)
		if err != nil {
			t.Fatal(err)
		}
		if v := hdr(got, "X-Call-Direction"); v != "agent-to-peer" {
			t.Fatalf("X-Call-Direction %q", v)
		}
		rang = append(rang, at)
		_ = at.Send(at.Reply(got, 486, "Busy Here"))
		if r, err := a.Response(sip.INVITE, wait); err != nil || r.StatusCode != 486 {
			t.Fatalf("caller got %v %v", r, err)
		}
		re.wantEvents(t, callID, events.TypeCallStarted, events.TypeCallEnded)
	}
	for i := 1; i < len(rang); i++ {
		if rang[i] == rang[i-1] {
			t.Fatalf("call %d rang the same instance as call %d", i, i-1)
		}
	}
}

func TestPeerToPSTN(t *testing.T) {
	re := startRoutingEdge(t)
	v := registerPeer(t, re)
	send := func(callID string, dod string) *sip.Request {
		inv := v.NewRequest(sip.INVITE, "sip:+4930123456@sip.local", callID)
		if dod != "" {
			inv.AppendHeader(sip.NewHeader("X-DOD-Number", dod))
		}
		_ = v.Send(inv)
		ch, err := v.Response(sip.INVITE, wait)
		if err != nil || ch.StatusCode != 407 {
			t.Fatalf("peer INVITE: %v %v, want 407", ch, err)
		}
		_ = v.Send(siptest.AckFor(inv, ch))
		authd, err := v.Authorize(inv, ch, "")
		if err != nil {
			t.Fatal(err)
		}
		_ = v.Send(authd)
		return authd
	}
	send("peer-no-dod", "")
	if r, err := v.Response(sip.INVITE, wait); err != nil || r.StatusCode != 400 {
		t.Fatalf("without X-DOD-Number: %v %v, want 400", r, err)
	}
	send("peer-bad-dod", "+19999999999")
	if r, err := v.Response(sip.INVITE, wait); err != nil || r.StatusCode != 404 {
		t.Fatalf("unknown X-DOD-Number: %v %v, want 404", r, err)
	}
	inv := send("peer-out", "+15550001111")
	got, err := re.primary.Request(sip.INVITE, wait)
	if err != nil {
		t.Fatal(err)
	}
	if hdr(got, "X-Call-Direction") != "peer-to-pstn" || got.GetHeader("X-DOD-Number") != nil {
		t.Fatalf("peer-to-pstn headers: %s", got.String())
	}
	if pai := hdr(got, "P-Asserted-Identity"); pai != "<sip:+15550001111@127.0.0.1;user=phone>" {
		t.Fatalf("P-Asserted-Identity %q", pai)
	}
	c := (&siptest.Call{Caller: v, Callee: re.primary, CallID: "peer-out", Invite: inv, Received: got}).Bind(t)
	ok := c.Answer()
	c.Hangup(ok, true)
	re.wantEvents(t, "peer-out", events.TypeCallStarted, events.TypeCallAnswered, events.TypeCallEnded)
	for _, id := range []string{"peer-no-dod", "peer-bad-dod"} {
		if evs := re.rec.byCall(id); len(evs) != 0 {
			t.Fatalf("refused call %s has events %v", id, evs)
		}
	}
}

func TestFromPSTNToPeer(t *testing.T) {
	re := startRoutingEdge(t)
	v := registerPeer(t, re)
	trunk := re.other(t, "+15551234567", "provider.test")
	fromTrunk(t, trunk, "+18095863314", "trunk01.test", "pstn-to-peer")
	got, err := v.Request(sip.INVITE, wait)
	if err != nil {
		t.Fatal(err)
	}
	if hdr(got, "X-Call-Direction") != "from-pstn" {
		t.Fatalf("X-Call-Direction %q", hdr(got, "X-Call-Direction"))
	}
	_ = v.Send(v.Reply(got, 603, "Decline"))
	if r, err := trunk.Response(sip.INVITE, wait); err != nil || r.StatusCode != 603 {
		t.Fatalf("trunk got %v %v", r, err)
	}
	re.wantEvents(t, "pstn-to-peer", events.TypeCallStarted, events.TypeCallEnded)
}

func TestFromPSTNLeastSessionsAndAffinity(t *testing.T) {
	re := startRoutingEdge(t)
	busy, idle := registerPeerAs(t, re, "conf", 9), registerPeerAs(t, re, "conf", 1)
	trunk := re.other(t, "+15551234567", "provider.test")
	call := func(callID, room string) *siptest.Phone {
		t.Helper()
		inv := trunk.NewRequest(sip.INVITE, "sip:+18005550123@trunk01.test", callID)
		inv.AppendHeader(sip.NewHeader("X-Room-Id", room))
		_ = trunk.Send(inv)
		got, at, err := siptest.FirstRequest(sip.INVITE, wait, busy, idle)
		if err != nil {
			t.Fatal(err)
		}
		_ = at.Send(at.Reply(got, 486, "Busy Here"))
		if r, err := trunk.Response(sip.INVITE, wait); err != nil || r.StatusCode != 486 {
			t.Fatalf("trunk got %v %v", r, err)
		}
		re.wantEvents(t, callID, events.TypeCallStarted, events.TypeCallEnded)
		return at
	}
	// Without the affinity header: least sessions.
	for i := range 2 {
		if at := call(fmt.Sprintf("least-%d", i), ""); at != idle {
			t.Fatalf("call %d went to the busier instance", i)
		}
	}
	// With it: every call of a room on one instance.
	for _, room := range []string{"r1", "r2", "r3"} {
		first := call("room-"+room+"-0", room)
		for i := 1; i < 3; i++ {
			if at := call(fmt.Sprintf("room-%s-%d", room, i), room); at != first {
				t.Fatalf("room %s moved to another instance", room)
			}
		}
	}
}

func TestDomainACLRefusesAgents(t *testing.T) {
	re := startRoutingEdge(t)
	p, err := siptest.NewPhone("udp", "3001", "locked.test", "1234", re.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if res, err := p.Register(300, ""); err != nil || res.StatusCode != 403 {
		t.Fatalf("REGISTER from outside the domain's ACL: %v %v, want 403", res, err)
	}
	inv := p.NewRequest(sip.INVITE, "sip:1001@sip.local", "acl-refused")
	_ = p.Send(inv)
	if res, err := p.Response(sip.INVITE, wait); err != nil || res.StatusCode != 403 {
		t.Fatalf("INVITE from outside the domain's ACL: %v %v, want 403 without a challenge", res, err)
	}
	if evs := re.rec.byCall("acl-refused"); len(evs) != 0 {
		t.Fatalf("refused call has events %v", evs)
	}
}

func TestFromPSTNInboundCredentials(t *testing.T) {
	re := startRoutingEdge(t)
	agent := re.phone(t, "udp", "1001")
	mustRegister(t, agent)
	for _, c := range []struct {
		name, password string
		want           int
	}{{"right password", "in-s3cr3t", 0}, {"wrong password", "nope", 403}} {
		t.Run(c.name, func(t *testing.T) {
			trunk, err := siptest.NewPhone("udp", "provider", "provider.test", c.password, re.udp)
			if err != nil {
				t.Fatal(err)
			}
			defer trunk.Close()
			callID := "pstn-auth-" + c.password
			inv := fromTrunk(t, trunk, "+17066040000", "trunk03.test", callID)
			ch, err := trunk.Response(sip.INVITE, wait)
			if err != nil || ch.StatusCode != 407 || !strings.Contains(hdr(ch, "Proxy-Authenticate"), `realm="trunk03.test"`) {
				t.Fatalf("INVITE from a trunk with inbound credentials: %v %v, want 407 for realm trunk03.test", ch, err)
			}
			_ = trunk.Send(siptest.AckFor(inv, ch))
			authd, err := trunk.Authorize(inv, ch, "")
			if err != nil {
				t.Fatal(err)
			}
			_ = trunk.Send(authd)
			if c.want != 0 {
				if r, err := trunk.Response(sip.INVITE, wait); err != nil || r.StatusCode != c.want {
					t.Fatalf("got %v %v, want %d", r, err, c.want)
				}
				if evs := re.rec.byCall(callID); len(evs) != 0 {
					t.Fatalf("refused call has events %v", evs)
				}
				return
			}
			got, err := agent.Request(sip.INVITE, wait)
			if err != nil {
				t.Fatal(err)
			}
			if got.GetHeader("Proxy-Authorization") != nil {
				t.Fatal("the trunk's credentials reached the agent")
			}
			_ = agent.Send(agent.Reply(got, 480, "Temporarily Unavailable"))
			if r, err := trunk.Response(sip.INVITE, wait); err != nil || r.StatusCode != 480 {
				t.Fatalf("trunk got %v %v", r, err)
			}
			re.wantEvents(t, callID, events.TypeCallStarted, events.TypeCallEnded)
		})
	}
}
