package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestGuardEnv(t *testing.T) {
	path := writeFile(t, "edgeport.yaml", routrEdgePort)
	cases := []struct {
		env  map[string]string
		want Guard
	}{
		{map[string]string{}, Guard{}},
		{map[string]string{
			"GUARD_SCANNER_USER_AGENTS": "friendly-scanner, evil-bot",
			"GUARD_RATE":                "50.5",
			"GUARD_BURST":               "100",
			"GUARD_BAN_TIME":            "10m",
			"GUARD_MAX_AUTH_FAILURES":   "5",
			"GUARD_MAX_SOURCES":         "1000",
			"GUARD_EXEMPT":              "203.0.113.0/24, 198.51.100.7",
			"GUARD_LIMIT_LOOPBACK":      "true",
		}, Guard{
			ScannerAgents: []string{"friendly-scanner", "evil-bot"}, Rate: 50.5, Burst: 100,
			BanTime: 10 * time.Minute, MaxAuthFailures: 5, MaxSources: 1000,
			Exempt:        []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("198.51.100.7/32")},
			LimitLoopback: true,
		}},
		{map[string]string{"GUARD_SCANNER_USER_AGENTS": "none", "GUARD_RATE": "0", "GUARD_MAX_AUTH_FAILURES": "0"},
			Guard{ScannerAgents: []string{}, Rate: -1, MaxAuthFailures: -1}},
	}
	for _, tc := range cases {
		tc.env["CONFIG_PATH"] = path
		c, err := Load(envOf(tc.env))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(c.Guard, tc.want) {
			t.Errorf("%v: got %+v, want %+v", tc.env, c.Guard, tc.want)
		}
	}
	for name, v := range map[string]string{
		"GUARD_RATE": "fast", "GUARD_BURST": "0", "GUARD_BAN_TIME": "soon",
		"GUARD_MAX_AUTH_FAILURES": "-2", "GUARD_EXEMPT": "not-a-net", "GUARD_LIMIT_LOOPBACK": "maybe",
	} {
		_, err := Load(envOf(map[string]string{"CONFIG_PATH": path, name: v}))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: got %v, want an error naming it", name, v, err)
		}
	}
}
