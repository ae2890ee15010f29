package sip

// routr-go patch: tests for the allocation patches listed in PATCHES.md.

import (
	"net"
	"testing"
)

func TestRoutrIsIPV6(t *testing.T) {
	for _, host := range []string{
		"127.0.0.1", "sip.example.com", "localhost", "::1", "[::1]", "fe80::1",
		"2001:db8::1", "::ffff:127.0.0.1", "0000:0000:0000:0000:0000:ffff:255.255.255.255",
		"a.b:c", "1.2.3.4:5060", "", ":", ".", "fe80::1%eth0",
	} {
		ip := net.ParseIP(host)
		want := ip != nil && ip.To4() == nil
		if got := isIPV6(host); got != want {
			t.Errorf("isIPV6(%q) = %v, want %v", host, got, want)
		}
	}
}
