package resources

import (
	"net/netip"
	"testing"
)

// The shipped example resources must load cleanly: the README's run
// command and the end-to-end tests use them.
func TestShippedExamples(t *testing.T) {
	s, err := LoadDir("../../config/resources")
	if err != nil {
		t.Fatal(err)
	}
	if w := s.Warnings(); len(w) != 0 {
		t.Errorf("warnings: %v", w)
	}
	counts := map[string]int{
		"domains": len(s.Domains()), "agents": len(s.Agents()), "credentials": len(s.CredentialsList()),
		"peers": len(s.Peers()), "numbers": len(s.Numbers()), "trunks": len(s.Trunks()), "acls": len(s.ACLs()),
	}
	want := map[string]int{"domains": 1, "agents": 3, "credentials": 5, "peers": 1, "numbers": 2, "trunks": 1, "acls": 1}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("%d %s, want %d", counts[k], k, n)
		}
	}

	d := s.DomainByURI("SIP.LOCAL.")
	if d == nil || d.Ref != "domain-01" || d.ACL == nil || d.ACL.Ref != "acl-01" {
		t.Fatalf("DomainByURI(sip.local) = %+v", d)
	}
	if len(d.EgressPolicies) != 1 || d.EgressPolicies[0].Number == nil || d.EgressPolicies[0].Number.Ref != "number-01" ||
		!d.EgressPolicies[0].Regexp.MatchString("+17065551234") || d.EgressPolicies[0].Regexp.MatchString("1002") {
		t.Errorf("egress policies = %+v", d.EgressPolicies)
	}

	for _, tc := range []struct {
		user, name, password string
		privacy              Privacy
	}{
		{"1001", "John Doe", "1234", PrivacyNone},
		{"1002", "Jane Doe", "1234", PrivacyNone},
		{"1003", "Private Agent", "1234", PrivacyPrivate},
	} {
		a := s.Agent("domain-01", tc.user)
		if a == nil {
			t.Errorf("Agent(domain-01, %s) = nil", tc.user)
			continue
		}
		if a.Name != tc.name || a.Privacy != tc.privacy || !a.Enabled || a.Domain != d {
			t.Errorf("Agent %s = %+v", tc.user, a)
		}
		c := s.Credentials(a.CredentialsRef)
		if c == nil || c != a.Credentials || c.Username != tc.user || c.Password != tc.password {
			t.Errorf("credentials of %s = %+v", tc.user, c)
		}
		if s.AgentByRef(a.Ref) != a {
			t.Errorf("AgentByRef(%s) is not Agent(domain-01, %s)", a.Ref, tc.user)
		}
	}
	if s.Agent("domain-01", "1004") != nil || s.Agent("domain-02", "1001") != nil {
		t.Error("found an agent that does not exist")
	}

	tr := s.TrunkByInboundURI("trunk01.sip.local")
	if tr == nil || tr.Ref != "trunk-01" || tr.ACL == nil || tr.OutboundCredentials == nil ||
		tr.OutboundCredentials.Username != "pbx-1" || tr.SendRegister {
		t.Fatalf("TrunkByInboundURI = %+v", tr)
	}
	if len(tr.URIs) != 1 || tr.URIs[0] != (TrunkURI{User: "pbx-1", Host: "127.0.0.1", Port: 5080, Transport: "udp", Priority: 10, Weight: 10, Enabled: true}) {
		t.Errorf("trunk URIs = %+v", tr.URIs)
	}
	if !tr.ACL.Allows(netip.MustParseAddr("127.0.0.1")) || tr.ACL.Allows(netip.MustParseAddr("8.8.8.8")) {
		t.Error("acl-01 should allow loopback and nothing public")
	}

	n := s.NumberByUser("17066041487")
	if n == nil || n.Ref != "number-01" || n.AORLink != "sip:1001@sip.local" || n.Trunk != tr || n.CountryISOCode != "US" {
		t.Errorf("NumberByUser(17066041487) = %+v", n)
	}
	n2 := s.Number("tel:+18095863314")
	if n2 == nil || n2.AORLink != "backend:voice_ls" || n2.SessionAffinityHeader != "X-Room-Id" ||
		len(n2.ExtraHeaders) != 1 || n2.ExtraHeaders[0] != (ExtraHeader{"X-Room-Id", "room-01"}) {
		t.Errorf("Number(tel:+18095863314) = %+v", n2)
	}

	p := s.PeerByAOR(n2.AORLink)
	if p == nil || p.Ref != "peer-01" || p != s.PeerByUsername("voice") || p != s.Peer("peer-01") ||
		p.BalancingAlgorithm != RoundRobin || !p.WithSessionAffinity || p.Credentials == nil || p.Credentials.Username != "voice" {
		t.Errorf("PeerByAOR(backend:voice_ls) = %+v", p)
	}
	if p.Source.File != "../../config/resources/peers.json" || p.Source.Line != 2 {
		t.Errorf("peer source = %+v, want peers.json line 2", p.Source)
	}
}
