package resources

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// ParseNet parses one access control rule or local network the ways Routr
// accepts them: a single address ("10.0.0.1", meaning /32 or /128), a CIDR
// ("10.0.0.0/8"; host bits may be set, as in Routr's "127.0.0.1/8") or an
// IPv4 address with a dotted netmask ("10.0.0.0/255.0.0.0"). The result is
// masked.
func ParseNet(s string) (netip.Prefix, error) {
	addrPart, bitsPart, hasSlash := strings.Cut(s, "/")
	addr, err := netip.ParseAddr(addrPart)
	if err != nil || addr.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address, CIDR or address/netmask", s)
	}
	addr = addr.Unmap()
	if !hasSlash {
		return netip.PrefixFrom(addr, addr.BitLen()), nil
	}
	if mask, err := netip.ParseAddr(bitsPart); err == nil {
		bits, ok := maskBits(mask)
		if !ok || !addr.Is4() {
			return netip.Prefix{}, fmt.Errorf("%q: %s is not a contiguous IPv4 netmask", s, bitsPart)
		}
		return netip.PrefixFrom(addr, bits).Masked(), nil
	}
	p, err := netip.ParsePrefix(addr.String() + "/" + bitsPart)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address, CIDR or address/netmask", s)
	}
	return p.Masked(), nil
}

// maskBits returns the prefix length of a contiguous IPv4 netmask.
func maskBits(m netip.Addr) (int, bool) {
	if !m.Is4() {
		return 0, false
	}
	b := m.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	n := 0
	for v&0x80000000 != 0 {
		n++
		v <<= 1
	}
	return n, v == 0
}

// Allows reports whether the ACL lets ip in.
//
// The most specific rule that contains ip decides: a /24 allow beats a /8
// deny and a /32 deny beats a /24 allow; between an allow and a deny of
// the same length, deny wins. When no rule contains ip, ip is denied if
// the ACL has allow rules (an allow list) and allowed if it has none (a
// deny list only). An ACL with no rules allows everything. IPv4-mapped
// IPv6 addresses are compared as IPv4.
//
// Routr v2 itself only checks that the address is in some allow rule (and
// only for Trunks); for the usual "deny 0.0.0.0/0, allow some networks"
// lists both give the same answers.
func (a *AccessControlList) Allows(ip netip.Addr) bool {
	ip = ip.Unmap()
	best, allowed := -1, len(a.allow) == 0
	for _, p := range a.allow {
		if p.Bits() > best && p.Contains(ip) {
			best, allowed = p.Bits(), true
		}
	}
	for _, p := range a.deny {
		if p.Bits() >= best && p.Contains(ip) {
			best, allowed = p.Bits(), false
		}
	}
	return allowed
}

// AllowNets returns the parsed allow rules (set by Build).
func (a *AccessControlList) AllowNets() []netip.Prefix { return slices.Clone(a.allow) }

// DenyNets returns the parsed deny rules (set by Build).
func (a *AccessControlList) DenyNets() []netip.Prefix { return slices.Clone(a.deny) }
