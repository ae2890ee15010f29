package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// The helpers below walk yaml.Node trees, recording field lines and
// reporting type errors with their line, as internal/resources does for
// resource files.

func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return "string " + strconv.Quote(n.Value)
		case "!!int":
			return "integer " + n.Value
		case "!!float":
			return "number " + n.Value
		case "!!bool":
			return "boolean " + n.Value
		case "!!null":
			return "null"
		}
		return strconv.Quote(n.Value)
	}
	return "an unsupported node"
}

// object walks a mapping; field returns false for unknown keys, which
// become warnings.
func (f *fileDecoder) object(n *yaml.Node, path string, field func(key string, v *yaml.Node, path string) bool) {
	n = deref(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		f.errorf(n.Line, path, "expected a mapping, got %s", describe(n))
		return
	}
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode {
			f.errorf(n.Line, path, "field names must be strings")
			continue
		}
		fp := k.Value
		if path != "" {
			fp = path + "." + k.Value
		}
		if first, dup := seen[k.Value]; dup {
			f.errorf(k.Line, fp, "duplicate field (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		f.lines[fp] = k.Line
		if !field(k.Value, v, fp) {
			f.warnings = append(f.warnings, lineMsg{k.Line, f.format(k.Line, fp, "unknown field, ignored")})
		}
	}
}

func (f *fileDecoder) list(n *yaml.Node, path string, item func(i int, v *yaml.Node, path string)) {
	n = deref(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		f.errorf(n.Line, path, "expected a list, got %s", describe(n))
		return
	}
	for i, v := range n.Content {
		ip := path + "[" + strconv.Itoa(i) + "]"
		f.lines[ip] = v.Line
		item(i, v, ip)
	}
}

// str decodes a scalar as written; it reports whether dst was set.
func (f *fileDecoder) str(n *yaml.Node, path string, dst *string) bool {
	n = deref(n)
	if isNull(n) {
		return false
	}
	if n.Kind != yaml.ScalarNode {
		f.errorf(n.Line, path, "expected a string, got %s", describe(n))
		return false
	}
	*dst = n.Value
	return true
}

func (f *fileDecoder) integer(n *yaml.Node, path string, dst *int) {
	n = deref(n)
	if isNull(n) {
		return
	}
	var v int
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&v) != nil {
		f.errorf(n.Line, path, "expected an integer, got %s", describe(n))
		return
	}
	*dst = v
}

func (f *fileDecoder) boolean(n *yaml.Node, path string, dst *bool) {
	n = deref(n)
	if isNull(n) {
		return
	}
	var v bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&v) != nil {
		f.errorf(n.Line, path, "expected true or false, got %s", describe(n))
		return
	}
	*dst = v
}

// strList decodes a list of scalars; an item that is not a scalar is
// reported, marked bad and kept as "" so that indexes match the file.
func (f *fileDecoder) strList(n *yaml.Node, path string, dst *[]string) {
	f.list(n, path, func(_ int, v *yaml.Node, p string) {
		var s string
		if !f.str(v, p, &s) && !isNull(deref(v)) {
			f.bad[p] = true
		}
		*dst = append(*dst, s)
	})
}

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
