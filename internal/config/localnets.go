package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// parseNet parses a local network as Routr does: an address (a /32 or
// /128), a CIDR (host bits may be set: "127.0.0.1/8") or an IPv4
// address/netmask ("10.0.0.0/255.0.0.0").
func parseNet(s string) (netip.Prefix, error) {
	addrPart, bitsPart, hasSlash := strings.Cut(s, "/")
	addr, err := netip.ParseAddr(addrPart)
	if err != nil || addr.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address, CIDR or address/netmask", s)
	}
	addr = addr.Unmap()
	if !hasSlash {
		return netip.PrefixFrom(addr, addr.BitLen()), nil
	}
	if mask, err := netip.ParseAddr(bitsPart); err == nil && mask.Is4() && addr.Is4() {
		b := mask.As4()
		v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		bits := 0
		for v&0x80000000 != 0 {
			bits++
			v <<= 1
		}
		if v != 0 {
			return netip.Prefix{}, fmt.Errorf("%q: %s is not a contiguous netmask", s, bitsPart)
		}
		return netip.PrefixFrom(addr, bits).Masked(), nil
	}
	p, err := netip.ParsePrefix(addr.String() + "/" + bitsPart)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address, CIDR or address/netmask", s)
	}
	return p.Masked(), nil
}
