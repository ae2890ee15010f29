package resources

import "strings"

// A Set's resources live as long as the Set, and an edge may hold
// hundreds of thousands of them. Parse leaves every string of every
// resource in its own small allocation, scattered among the YAML nodes
// it was read from: once those are collected, the spans they shared stay
// mostly empty but cannot be given back. Build therefore copies the
// strings of its resources back to back into blocks of packBlock bytes,
// and shares the values many resources repeat: a reference field points
// at the Ref of the resource it resolved to, apiVersion and region are
// interned.

// packBlock is the size of one block of packed strings: large enough that
// the per-allocation overhead vanishes, small enough that a resource kept
// after its Set is gone keeps little else alive, and the largest of Go's
// small size classes (a larger block would be rounded up to whole pages).
const packBlock = 32 << 10

// packer copies strings into blocks; flush must be called before the
// strings are read.
type packer struct {
	pending  []*string
	size     int
	interned map[string]string
}

// resource queues the strings of r that are its own: not its references
// to other resources, which Build points at their targets' Ref once
// resolved, nor values that Build replaces with constants.
func (p *packer) resource(r Resource) {
	b := r.Meta()
	switch b.APIVersion {
	case "v2beta1":
		b.APIVersion = "v2beta1"
	case "v2":
		b.APIVersion = "v2"
	}
	b.Region = p.intern(b.Region)
	p.add(&b.Ref, &b.Name)
	switch x := r.(type) {
	case *Domain:
		p.add(&x.DomainURI)
		for i := range x.EgressPolicies {
			p.add(&x.EgressPolicies[i].Rule)
		}
	case *Agent:
		p.add(&x.Username)
	case *Credentials:
		p.add(&x.Username, &x.Password)
	case *Peer:
		p.add(&x.Username, &x.AOR, &x.ContactAddr)
	case *Number:
		p.add(&x.TelURL, &x.AORLink, &x.SessionAffinityHeader, &x.City, &x.Country, &x.CountryISOCode)
		for i := range x.ExtraHeaders {
			p.add(&x.ExtraHeaders[i].Name, &x.ExtraHeaders[i].Value)
		}
	case *Trunk:
		p.add(&x.InboundURI)
		for i := range x.URIs {
			u := &x.URIs[i]
			u.Transport = p.intern(u.Transport)
			p.add(&u.User, &u.Host)
		}
	case *AccessControlList:
		for i := range x.Allow {
			p.add(&x.Allow[i])
		}
		for i := range x.Deny {
			p.add(&x.Deny[i])
		}
	}
}

func (p *packer) add(ss ...*string) {
	for _, s := range ss {
		if *s == "" {
			continue
		}
		// A block over packBlock would take whole pages (40 KiB for
		// 32 KiB and a few bytes): flush before.
		if p.size > 0 && p.size+len(*s) > packBlock {
			p.flush()
		}
		p.pending = append(p.pending, s)
		p.size += len(*s)
	}
}

// flush copies the pending strings into one new block.
func (p *packer) flush() {
	var sb strings.Builder
	sb.Grow(p.size)
	for _, s := range p.pending {
		sb.WriteString(*s)
	}
	all, off := sb.String(), 0
	for _, s := range p.pending {
		n := len(*s)
		*s = all[off : off+n]
		off += n
	}
	clear(p.pending)
	p.pending, p.size = p.pending[:0], 0
}

// intern returns one copy of s for all the equal strings it is given.
func (p *packer) intern(s string) string {
	if s == "" {
		return ""
	}
	if v, ok := p.interned[s]; ok {
		return v
	}
	if p.interned == nil {
		p.interned = make(map[string]string)
	}
	s = strings.Clone(s)
	p.interned[s] = s
	return s
}
