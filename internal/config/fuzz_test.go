package config

import (
	"net/netip"
	"os"
	"testing"
)

// FuzzLoadEdgePort feeds arbitrary EdgePort files through load. It must
// not panic, and a configuration it accepts must be usable: at least one
// transport, each with a known protocol, a valid port and an IP bindAddr.
func FuzzLoadEdgePort(f *testing.F) {
	shipped, err := os.ReadFile("../../config/edgeport.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		string(shipped),
		routrEdgePort,
		"",
		"kind: EdgePort\nspec:\n  transport: [\n",
		`{"kind": "EdgePort", "spec": {"transport": [{"protocol": "udp", "port": 5060}]}}`,
		"spec: {transport: [{protocol: tls, port: 5061}], securityContext: {certFile: a, keyFile: b}}",
		"spec: {localnets: [10.0.0.0/255.255.0.0, '::1/128'], externalAddrs: ['[::1]:5060']}",
		"a: &a [*a]",
		"spec: {transport: [{protocol: udp, port: 99999999999999999999999}]}",
	} {
		f.Add([]byte(s))
	}
	env := envOf(nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := load(env, "fuzz.yaml", data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if len(c.Transports) == 0 {
			t.Fatal("no transports")
		}
		for _, tr := range c.Transports {
			switch tr.Protocol {
			case "udp", "tcp", "tls", "ws", "wss":
			default:
				t.Errorf("protocol %q", tr.Protocol)
			}
			if tr.Port < 1 || tr.Port > 65535 {
				t.Errorf("port %d", tr.Port)
			}
			if _, err := netip.ParseAddr(tr.BindAddr); err != nil {
				t.Errorf("bindAddr %q", tr.BindAddr)
			}
			if tr.Secure() && !c.TLS.Configured() {
				t.Error("secure transport without TLS material")
			}
		}
		if len(c.Methods) == 0 {
			t.Error("no methods")
		}
	})
}
