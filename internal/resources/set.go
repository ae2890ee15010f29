package resources

import (
	"fmt"
	"slices"
	"strings"
)

// Set is a validated, cross-linked snapshot of resources. It is never
// modified after Build returns it, so any number of goroutines may read
// it; a nil *Set answers every lookup with nil. The resources it returns
// are shared: callers must not modify them.
type Set struct {
	all  []Resource
	refs index // index.go: positions in all, by Ref

	domains     []*Domain
	agents      []*Agent
	credentials []*Credentials
	peers       []*Peer
	numbers     []*Number
	trunks      []*Trunk
	acls        []*AccessControlList

	domainByURI map[string]*Domain
	agentByUser index // positions in agents, by DomainRef and Username
	numberByTel map[string]*Number
	trunkByURI  map[string]*Trunk
	peerByUser  map[string]*Peer
	peersByAOR  map[string][]*Peer
	warnings    []Problem
}

// Build validates rs and links them into a Set: every field value is
// checked, refs must be unique across all kinds, domain URIs, tel URLs,
// trunk inbound URIs and peer usernames must be unique, agent usernames
// unique within their domain, and every *Ref must name a resource of the
// right kind. All problems are returned together in a *ValidationError.
//
// Build works on copies: rs are not modified and may be built again.
// Resources not made by Parse must set what Parse defaults: Enabled
// (true unless spec.enabled says otherwise) on Agent, Peer and TrunkURI.
func Build(rs []Resource) (*Set, error) {
	var c checker
	s := &Set{
		domainByURI: make(map[string]*Domain),
		numberByTel: make(map[string]*Number),
		trunkByURI:  make(map[string]*Trunk),
		peerByUser:  make(map[string]*Peer),
		peersByAOR:  make(map[string][]*Peer),
	}

	// Copy, normalize and check each resource on its own.
	var pk packer // pack.go
	for _, r := range rs {
		r = clone(r)
		if r == nil {
			continue
		}
		pk.resource(r)
		switch x := r.(type) {
		case *Domain:
			add(&s.domains, x, KindDomain, c.domain)
		case *Agent:
			add(&s.agents, x, KindAgent, c.agent)
		case *Credentials:
			add(&s.credentials, x, KindCredentials, c.credentials)
		case *Peer:
			add(&s.peers, x, KindPeer, c.peer)
		case *Number:
			add(&s.numbers, x, KindNumber, c.number)
		case *Trunk:
			add(&s.trunks, x, KindTrunk, c.trunk)
		case *AccessControlList:
			add(&s.acls, x, KindACL, c.acl)
		}
		s.all = append(s.all, r)
		if n := r.Meta().notes; n != nil {
			c.probs = append(c.probs, n.problems...)
			s.warnings = append(s.warnings, n.warnings...)
		}
	}
	pk.flush()

	// Refs are unique across all kinds, as in Routr.
	s.refs = newIndex(len(s.all))
	for i, r := range s.all {
		b := r.Meta()
		if b.Ref == "" {
			continue
		}
		if first := s.byRef(b.Ref); first != nil {
			c.add(b, "ref", "duplicate ref, also defined as %s", where(first.Meta()))
			continue
		}
		s.refs.insert(s.refs.hash(b.Ref), i)
	}

	for _, d := range s.domains {
		if d.DomainURI == "" {
			continue
		}
		if first, dup := s.domainByURI[d.DomainURI]; dup {
			c.add(&d.Base, "spec.context.domainUri", "%q is also the domainUri of %s", d.DomainURI, where(&first.Base))
			continue
		}
		s.domainByURI[d.DomainURI] = d
	}
	for _, n := range s.numbers {
		if n.TelURL == "" {
			continue
		}
		k := telKey(n.TelURL)
		if first, dup := s.numberByTel[k]; dup {
			c.add(&n.Base, "spec.location.telUrl", "%q is also the telUrl of %s", n.TelURL, where(&first.Base))
			continue
		}
		s.numberByTel[k] = n
	}
	for _, t := range s.trunks {
		if t.InboundURI == "" {
			continue
		}
		if first, dup := s.trunkByURI[t.InboundURI]; dup {
			c.add(&t.Base, "spec.inbound.uri", "%q is also the inbound uri of %s", t.InboundURI, where(&first.Base))
			continue
		}
		s.trunkByURI[t.InboundURI] = t
	}
	for _, p := range s.peers {
		if p.Username != "" {
			if first, dup := s.peerByUser[p.Username]; dup {
				c.add(&p.Base, "spec.username", "%q is also the username of %s", p.Username, where(&first.Base))
			} else {
				s.peerByUser[p.Username] = p
			}
		}
		if p.AOR != "" {
			s.peersByAOR[p.AOR] = append(s.peersByAOR[p.AOR], p)
		}
	}

	// Resolve references; a resolved reference field then shares its
	// target's Ref (pack.go).
	for _, d := range s.domains {
		d.ACL = resolve[*AccessControlList](s, &c, &d.Base, "spec.accessControlListRef", &d.AccessControlListRef, KindACL)
		for i := range d.EgressPolicies {
			e := &d.EgressPolicies[i]
			e.Number = resolve[*Number](s, &c, &d.Base, fmt.Sprintf("spec.context.egressPolicies[%d].numberRef", i), &e.NumberRef, KindNumber)
		}
	}
	s.agentByUser = newIndex(len(s.agents))
	for i, a := range s.agents {
		a.Domain = resolve[*Domain](s, &c, &a.Base, "spec.domainRef", &a.DomainRef, KindDomain)
		a.Credentials = resolve[*Credentials](s, &c, &a.Base, "spec.credentialsRef", &a.CredentialsRef, KindCredentials)
		if a.Domain == nil || a.Username == "" {
			continue
		}
		if first := s.Agent(a.DomainRef, a.Username); first != nil {
			c.add(&a.Base, "spec.username", "%q is also the username of %s in Domain %q", a.Username, where(&first.Base), a.DomainRef)
			continue
		}
		s.agentByUser.insert(s.agentByUser.hash2(a.DomainRef, a.Username), i)
	}
	for _, p := range s.peers {
		p.Credentials = resolve[*Credentials](s, &c, &p.Base, "spec.credentialsRef", &p.CredentialsRef, KindCredentials)
		p.ACL = resolve[*AccessControlList](s, &c, &p.Base, "spec.accessControlListRef", &p.AccessControlListRef, KindACL)
	}
	for _, n := range s.numbers {
		n.Trunk = resolve[*Trunk](s, &c, &n.Base, "spec.trunkRef", &n.TrunkRef, KindTrunk)
	}
	for _, t := range s.trunks {
		t.ACL = resolve[*AccessControlList](s, &c, &t.Base, "spec.inbound.accessControlListRef", &t.AccessControlListRef, KindACL)
		t.InboundCredentials = resolve[*Credentials](s, &c, &t.Base, "spec.inbound.credentialsRef", &t.InboundCredentialsRef, KindCredentials)
		t.OutboundCredentials = resolve[*Credentials](s, &c, &t.Base, "spec.outbound.credentialsRef", &t.OutboundCredentialsRef, KindCredentials)
	}

	if err := validationError(c.probs); err != nil {
		return nil, err
	}
	sortProblems(s.warnings)
	// What Parse kept to point at fields (a line per field path, the
	// problems found) is only needed to report problems, which are all
	// reported by now: the Set's copies drop it. At 100,000 agents with
	// credentials it was most of the Set's memory.
	for _, r := range s.all {
		r.Meta().notes = nil
	}
	return s, nil
}

// add sets x's kind, checks x on its own and appends it to list.
func add[T Resource](list *[]T, x T, kind Kind, check func(T)) {
	x.Meta().Kind = kind
	check(x)
	*list = append(*list, x)
}

// resolve looks up *ref for b's field, reporting a dangling reference or
// one to the wrong kind. An empty ref resolves to nil without complaint.
// Once resolved, *ref is the target's Ref: equal, and stored once.
func resolve[T Resource](s *Set, c *checker, b *Base, field string, ref *string, want Kind) T {
	var zero T
	if *ref == "" {
		return zero
	}
	r := s.byRef(*ref)
	if r == nil {
		c.add(b, field, "references unknown %s %q", want, *ref)
		return zero
	}
	t, ok := r.(T)
	if !ok {
		c.add(b, field, "references %s, want a %s", where(r.Meta()), want)
		return zero
	}
	*ref = t.Meta().Ref
	return t
}

// clone returns a copy of r that Build may normalize and link without
// touching r; nil for a nil or foreign Resource.
func clone(r Resource) Resource {
	switch x := r.(type) {
	case *Domain:
		if x == nil {
			return nil
		}
		y := *x
		y.ACL = nil
		y.EgressPolicies = slices.Clone(x.EgressPolicies)
		for i := range y.EgressPolicies {
			y.EgressPolicies[i].Regexp, y.EgressPolicies[i].Number = nil, nil
		}
		return &y
	case *Agent:
		if x == nil {
			return nil
		}
		y := *x
		y.Domain, y.Credentials = nil, nil
		return &y
	case *Credentials:
		if x == nil {
			return nil
		}
		y := *x
		return &y
	case *Peer:
		if x == nil {
			return nil
		}
		y := *x
		y.Credentials, y.ACL = nil, nil
		return &y
	case *Number:
		if x == nil {
			return nil
		}
		y := *x
		y.Trunk = nil
		y.ExtraHeaders = slices.Clone(x.ExtraHeaders)
		return &y
	case *Trunk:
		if x == nil {
			return nil
		}
		y := *x
		y.ACL, y.InboundCredentials, y.OutboundCredentials = nil, nil, nil
		y.URIs = slices.Clone(x.URIs)
		return &y
	case *AccessControlList:
		if x == nil {
			return nil
		}
		y := *x
		y.Allow, y.Deny = slices.Clone(x.Allow), slices.Clone(x.Deny)
		y.allow, y.deny = nil, nil
		return &y
	}
	return nil
}

// telKey is the form tel URLs are compared in: scheme lowercased, visual
// separators ("-", ".", "(", ")", spaces) removed from the number.
func telKey(tel string) string {
	if len(tel) >= 4 && strings.EqualFold(tel[:4], "tel:") {
		tel = tel[4:]
	}
	num, params, hasParams := strings.Cut(tel, ";")
	num = strings.Map(func(r rune) rune {
		switch r {
		case '-', '.', '(', ')', ' ':
			return -1
		}
		return r
	}, num)
	if hasParams {
		return "tel:" + num + ";" + params
	}
	return "tel:" + num
}

// Resource returns the resource with ref, of any kind.
func (s *Set) Resource(ref string) Resource {
	if s == nil {
		return nil
	}
	return s.byRef(ref)
}

// byRef returns the resource with ref, or nil.
func (s *Set) byRef(ref string) Resource {
	i := s.refs.find(s.refs.hash(ref), func(i int) bool { return s.all[i].Meta().Ref == ref })
	if i < 0 {
		return nil
	}
	return s.all[i]
}

// All returns every resource in load order.
func (s *Set) All() []Resource {
	if s == nil {
		return nil
	}
	return slices.Clone(s.all)
}

// Warnings returns non-fatal findings, such as unknown fields that were
// ignored, ordered by file and line.
func (s *Set) Warnings() []Problem {
	if s == nil {
		return nil
	}
	return slices.Clone(s.warnings)
}

// Domain returns the Domain with ref.
func (s *Set) Domain(ref string) *Domain { return lookup[*Domain](s, ref) }

// DomainByURI returns the Domain whose domainUri is host (compared
// case-insensitively, a trailing dot ignored).
func (s *Set) DomainByURI(host string) *Domain {
	if s == nil {
		return nil
	}
	return s.domainByURI[normHost(host)]
}

// Agent returns the Agent with username in the Domain with domainRef.
// Usernames are compared exactly, as SIP user parts are case-sensitive.
func (s *Set) Agent(domainRef, username string) *Agent {
	if s == nil {
		return nil
	}
	i := s.agentByUser.find(s.agentByUser.hash2(domainRef, username), func(i int) bool {
		a := s.agents[i]
		return a.Username == username && a.DomainRef == domainRef
	})
	if i < 0 {
		return nil
	}
	return s.agents[i]
}

// AgentByRef returns the Agent with ref.
func (s *Set) AgentByRef(ref string) *Agent { return lookup[*Agent](s, ref) }

// Credentials returns the Credentials with ref.
func (s *Set) Credentials(ref string) *Credentials { return lookup[*Credentials](s, ref) }

// Number returns the Number whose telUrl is telURL. Visual separators in
// the number ("tel:+1-706-604-1487") do not matter.
func (s *Set) Number(telURL string) *Number {
	if s == nil || telURL == "" {
		return nil
	}
	return s.numberByTel[telKey(telURL)]
}

// NumberByUser returns the Number a Request-URI user part names: the one
// whose telUrl is "tel:"+user, else, when user has a leading "+", the one
// without it, else the one with it. So "17066041487" and "+17066041487"
// both find tel:+17066041487, and a number configured without "+" is found
// by a user part with one.
func (s *Set) NumberByUser(user string) *Number {
	if s == nil || user == "" {
		return nil
	}
	if n := s.Number("tel:" + user); n != nil {
		return n
	}
	if rest, ok := strings.CutPrefix(user, "+"); ok {
		return s.Number("tel:" + rest)
	}
	return s.Number("tel:+" + user)
}

// NumberByRef returns the Number with ref.
func (s *Set) NumberByRef(ref string) *Number { return lookup[*Number](s, ref) }

// Trunk returns the Trunk with ref.
func (s *Set) Trunk(ref string) *Trunk { return lookup[*Trunk](s, ref) }

// TrunkByInboundURI returns the Trunk whose spec.inbound.uri is host
// (compared case-insensitively, a trailing dot ignored).
func (s *Set) TrunkByInboundURI(host string) *Trunk {
	if s == nil {
		return nil
	}
	return s.trunkByURI[normHost(host)]
}

// Peer returns the Peer with ref.
func (s *Set) Peer(ref string) *Peer { return lookup[*Peer](s, ref) }

// PeerByUsername returns the Peer with username.
func (s *Set) PeerByUsername(username string) *Peer {
	if s == nil {
		return nil
	}
	return s.peerByUser[username]
}

// PeerByAOR returns the first Peer (in load order) whose aor is aor,
// compared exactly. Several Peers may share an aor; see PeersByAOR.
func (s *Set) PeerByAOR(aor string) *Peer {
	if s == nil {
		return nil
	}
	if ps := s.peersByAOR[aor]; len(ps) > 0 {
		return ps[0]
	}
	return nil
}

// PeersByAOR returns every Peer whose aor is aor, in load order.
func (s *Set) PeersByAOR(aor string) []*Peer {
	if s == nil {
		return nil
	}
	return slices.Clone(s.peersByAOR[aor])
}

// ACL returns the AccessControlList with ref.
func (s *Set) ACL(ref string) *AccessControlList { return lookup[*AccessControlList](s, ref) }

// Domains returns every Domain in load order.
func (s *Set) Domains() []*Domain { return cloneOf(s, func(s *Set) []*Domain { return s.domains }) }

// Agents returns every Agent in load order.
func (s *Set) Agents() []*Agent { return cloneOf(s, func(s *Set) []*Agent { return s.agents }) }

// CredentialsList returns every Credentials in load order.
func (s *Set) CredentialsList() []*Credentials {
	return cloneOf(s, func(s *Set) []*Credentials { return s.credentials })
}

// Peers returns every Peer in load order.
func (s *Set) Peers() []*Peer { return cloneOf(s, func(s *Set) []*Peer { return s.peers }) }

// Numbers returns every Number in load order.
func (s *Set) Numbers() []*Number { return cloneOf(s, func(s *Set) []*Number { return s.numbers }) }

// Trunks returns every Trunk in load order.
func (s *Set) Trunks() []*Trunk { return cloneOf(s, func(s *Set) []*Trunk { return s.trunks }) }

// ACLs returns every AccessControlList in load order.
func (s *Set) ACLs() []*AccessControlList {
	return cloneOf(s, func(s *Set) []*AccessControlList { return s.acls })
}

func lookup[T Resource](s *Set, ref string) T {
	var zero T
	if s == nil {
		return zero
	}
	t, _ := s.byRef(ref).(T)
	return t
}

func cloneOf[T any](s *Set, f func(*Set) []T) []T {
	if s == nil {
		return nil
	}
	return slices.Clone(f(s))
}

func normHost(h string) string {
	return strings.ToLower(strings.TrimSuffix(h, "."))
}
