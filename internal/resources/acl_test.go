package resources

import (
	"net/netip"
	"testing"
)

func TestParseNet(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{in: "10.0.0.1", want: "10.0.0.1/32"},
		{in: "10.0.0.0/8", want: "10.0.0.0/8"},
		{in: "127.0.0.1/8", want: "127.0.0.0/8"},
		{in: "0.0.0.0/0", want: "0.0.0.0/0"},
		{in: "192.168.1.3/31", want: "192.168.1.2/31"},
		{in: "10.1.2.3/255.255.0.0", want: "10.1.0.0/16"},
		{in: "10.1.2.3/0.0.0.0", want: "0.0.0.0/0"},
		{in: "::1", want: "::1/128"},
		{in: "2001:db8::/32", want: "2001:db8::/32"},
		{in: "::ffff:10.0.0.1", want: "10.0.0.1/32"},
		{in: "10.0.0.0/33", err: `"10.0.0.0/33" is not an IP address, CIDR or address/netmask`},
		{in: "10.0.0.0/", err: `"10.0.0.0/" is not an IP address, CIDR or address/netmask`},
		{in: "10.0.0.0/255.0.255.0", err: `"10.0.0.0/255.0.255.0": 255.0.255.0 is not a contiguous IPv4 netmask`},
		{in: "2001:db8::/ffff::", err: `"2001:db8::/ffff::": ffff:: is not a contiguous IPv4 netmask`},
		{in: "fe80::1%eth0", err: `"fe80::1%eth0" is not an IP address, CIDR or address/netmask`},
		{in: "example.com", err: `"example.com" is not an IP address, CIDR or address/netmask`},
		{in: "", err: `"" is not an IP address, CIDR or address/netmask`},
	}
	for _, tt := range tests {
		p, err := ParseNet(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("ParseNet(%q) error = %v, want %s", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || p.String() != tt.want {
			t.Errorf("ParseNet(%q) = %v, %v; want %s", tt.in, p, err, tt.want)
		}
	}
}

func TestACLAllows(t *testing.T) {
	acl := func(allow, deny []string) *AccessControlList {
		var c checker
		a := &AccessControlList{Base: Base{APIVersion: "v2", Ref: "a"}, Allow: allow, Deny: deny}
		c.acl(a)
		if len(c.probs) != 0 {
			t.Fatal(c.probs)
		}
		return a
	}
	routr := acl([]string{"192.168.1.3/31", "127.0.0.1/8", "10.111.221.22/31"}, []string{"0.0.0.0/1"})
	lan := acl([]string{"10.0.0.0/8"}, []string{"10.1.0.0/16", "10.1.2.3"})
	block := acl(nil, []string{"203.0.113.0/24"})
	tie := acl([]string{"10.0.0.0/8"}, []string{"10.0.0.0/8"})
	empty := acl(nil, nil)
	v6 := acl([]string{"::1", "2001:db8::/32"}, []string{"::/0", "0.0.0.0/0"})

	tests := []struct {
		name string
		acl  *AccessControlList
		ip   string
		want bool
	}{
		{"routr example: allowed loopback", routr, "127.0.0.1", true},
		{"routr example: allowed /31", routr, "10.111.221.23", true},
		{"routr example: denied by /1", routr, "8.8.8.8", false},
		{"routr example: in no rule, allow list present", routr, "200.1.1.1", false},
		{"mapped IPv4", routr, "::ffff:127.0.0.1", true},
		{"allow /8", lan, "10.2.0.1", true},
		{"more specific deny /16 beats allow /8", lan, "10.1.9.9", false},
		{"deny /32", lan, "10.1.2.3", false},
		{"outside allow list", lan, "192.168.0.1", false},
		{"deny list only: denied", block, "203.0.113.7", false},
		{"deny list only: others allowed", block, "198.51.100.1", true},
		{"same length: deny wins", tie, "10.0.0.1", false},
		{"no rules: allowed", empty, "1.2.3.4", true},
		{"v6 loopback", v6, "::1", true},
		{"v6 allowed range", v6, "2001:db8::5", true},
		{"v6 denied", v6, "2001:db9::5", false},
		{"v4 denied in mixed", v6, "127.0.0.1", false},
	}
	for _, tt := range tests {
		if got := tt.acl.Allows(netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("%s: Allows(%s) = %v, want %v", tt.name, tt.ip, got, tt.want)
		}
	}
}
