package resources

import (
	"sync"
	"testing"
)

func mustBuild(t *testing.T, rs ...Resource) *Set {
	t.Helper()
	s, err := Build(rs)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNumberLookups(t *testing.T) {
	s := mustBuild(t,
		&Number{Base: Base{APIVersion: "v2", Ref: "plus"}, TelURL: "tel:+17066041487"},
		&Number{Base: Base{APIVersion: "v2", Ref: "bare"}, TelURL: "tel:8095863314"},
		&Number{Base: Base{APIVersion: "v2", Ref: "dashes"}, TelURL: "tel:+1-404-555-1212"},
		&Number{Base: Base{APIVersion: "v2", Ref: "both"}, TelURL: "tel:+4930123"},
		&Number{Base: Base{APIVersion: "v2", Ref: "both-bare"}, TelURL: "tel:4930123"},
	)
	tests := []struct {
		user, want string
	}{
		{"+17066041487", "plus"},
		{"17066041487", "plus"},
		{"8095863314", "bare"},
		{"+8095863314", "bare"},
		{"14045551212", "dashes"},
		{"+1-404-555-1212", "dashes"},
		{"+4930123", "both"},
		{"4930123", "both-bare"},
		{"1706604148", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got := ""
		if n := s.NumberByUser(tt.user); n != nil {
			got = n.Ref
		}
		if got != tt.want {
			t.Errorf("NumberByUser(%q) = %q, want %q", tt.user, got, tt.want)
		}
	}
	if n := s.Number("TEL:+1 (404) 555.1212"); n == nil || n.Ref != "dashes" {
		t.Errorf("Number with separators = %v", n)
	}
}

func TestPeersSharingAnAOR(t *testing.T) {
	s := mustBuild(t,
		&Peer{Base: Base{APIVersion: "v2", Ref: "ast-1"}, Username: "ast1", AOR: "sip:conference@sip.local", Enabled: true},
		&Peer{Base: Base{APIVersion: "v2", Ref: "ast-2"}, Username: "ast2", AOR: "sip:conference@sip.local", Enabled: true},
	)
	if p := s.PeerByAOR("sip:conference@sip.local"); p == nil || p.Ref != "ast-1" {
		t.Errorf("PeerByAOR = %v, want the first", p)
	}
	if ps := s.PeersByAOR("sip:conference@sip.local"); len(ps) != 2 || ps[1].Ref != "ast-2" {
		t.Errorf("PeersByAOR = %v", ps)
	}
}

// A nil Set (a Holder before its first Store) answers every lookup with nil.
func TestNilSet(t *testing.T) {
	var s *Set
	if s.Domain("x") != nil || s.DomainByURI("x") != nil || s.Agent("x", "y") != nil || s.AgentByRef("x") != nil ||
		s.Credentials("x") != nil || s.Number("tel:1") != nil || s.NumberByUser("1") != nil || s.NumberByRef("x") != nil ||
		s.Trunk("x") != nil || s.TrunkByInboundURI("x") != nil || s.Peer("x") != nil || s.PeerByUsername("x") != nil ||
		s.PeerByAOR("x") != nil || s.PeersByAOR("x") != nil || s.ACL("x") != nil || s.Resource("x") != nil ||
		s.Domains() != nil || s.Agents() != nil || s.Peers() != nil || s.Trunks() != nil || s.Numbers() != nil ||
		s.ACLs() != nil || s.CredentialsList() != nil || s.All() != nil || s.Warnings() != nil {
		t.Error("nil Set returned something")
	}
	var h Holder
	if h.Load() != nil {
		t.Error("zero Holder holds a Set")
	}
}

// Build copies: its input is not modified, and building the same input
// twice gives two independent Sets (as an API rebuilding after a change
// does while requests still read the old Set).
func TestBuildDoesNotModifyInput(t *testing.T) {
	d := &Domain{Base: Base{APIVersion: "v2", Ref: "d"}, DomainURI: "SIP.Local",
		EgressPolicies: []EgressPolicy{{Rule: ".*", NumberRef: "n"}}}
	n := &Number{Base: Base{APIVersion: "v2", Ref: "n"}, TelURL: "tel:+1"}
	a := &Agent{Base: Base{APIVersion: "v2", Ref: "a"}, Username: "1001", DomainRef: "d", Privacy: "private", Enabled: true}
	rs := []Resource{d, n, a}
	s1, s2 := mustBuild(t, rs...), mustBuild(t, rs...)
	if d.DomainURI != "SIP.Local" || d.EgressPolicies[0].Number != nil || d.EgressPolicies[0].Regexp != nil ||
		a.Domain != nil || a.Privacy != "private" || d.Kind != "" {
		t.Error("Build modified its input")
	}
	if s1.Domain("d") == s2.Domain("d") || s1.Agent("d", "1001").Domain != s1.Domain("d") ||
		s2.Agent("d", "1001").Domain != s2.Domain("d") {
		t.Error("Sets share resources")
	}
	if s1.Domain("d").Kind != KindDomain || s1.Agent("d", "1001").Privacy != PrivacyPrivate {
		t.Error("Build did not normalize")
	}
}

func TestBuildProblemsWithoutFiles(t *testing.T) {
	_, err := Build([]Resource{&Agent{Base: Base{APIVersion: "v2", Ref: "a"}, Username: "1001", DomainRef: "d"}, nil})
	want := `Agent "a": spec.domainRef: references unknown Domain "d"`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

// Readers keep using the Set they loaded while a writer swaps in new ones;
// run with -race.
func TestHolderSwap(t *testing.T) {
	s1 := mustBuild(t, &Domain{Base: Base{APIVersion: "v2", Ref: "d1"}, DomainURI: "one.local"})
	s2 := mustBuild(t, &Domain{Base: Base{APIVersion: "v2", Ref: "d2"}, DomainURI: "two.local"})
	h := NewHolder(s1)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				s := h.Load()
				if s.DomainByURI("one.local") == nil && s.DomainByURI("two.local") == nil {
					t.Error("a loaded Set has neither domain")
					return
				}
			}
		})
	}
	for i := range 1000 {
		if i%2 == 0 {
			h.Store(s2)
		} else {
			h.Store(s1)
		}
	}
	wg.Wait()
}

// TestSetDropsParseBookkeeping: the Set's resources keep nothing of what
// Parse recorded to point at fields (at 100,000 agents it was most of the
// Set's memory), and the parsed resources keep theirs, so that they can be
// built again with the same messages.
func TestSetDropsParseBookkeeping(t *testing.T) {
	rs, err := Parse("agents.yaml", []byte(`
- apiVersion: v2beta1
  kind: Domain
  ref: domain-1
  metadata: {name: Local}
  spec: {context: {domainUri: sip.local}}
- apiVersion: v2beta1
  kind: Agent
  ref: agent-1
  metadata: {name: One}
  spec: {username: "1001", domainRef: domain-1, unknownField: 1}
`))
	if err != nil {
		t.Fatal(err)
	}
	set, err := Build(rs)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Warnings()) != 1 {
		t.Errorf("warnings %v, want the unknown field", set.Warnings())
	}
	for _, r := range set.All() {
		if b := r.Meta(); b.notes != nil {
			t.Errorf("%s keeps parse bookkeeping", b.Ref)
		}
	}
	if n := rs[1].Meta().notes; n == nil || n.lines == nil {
		t.Error("the parsed agent lost its field lines")
	}
}
