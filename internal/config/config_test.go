package config

import (
	"bytes"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestDefaults(t *testing.T) {
	t.Chdir(t.TempDir()) // no config/edgeport.yaml here
	c, err := Load(envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Auth.Secret) != 32 {
		t.Errorf("secret of %d bytes, want 32 random ones", len(c.Auth.Secret))
	}
	c2, _ := Load(envOf(nil))
	if bytes.Equal(c.Auth.Secret, c2.Auth.Secret) {
		t.Error("two loads made the same secret")
	}
	c.Auth.Secret = nil
	want := &Config{
		Ref:                 "edgeport-01",
		BindAddr:            "0.0.0.0",
		Transports:          []Transport{{"udp", "0.0.0.0", 5060}, {"tcp", "0.0.0.0", 5060}},
		Methods:             []string{"REGISTER", "INVITE", "ACK", "BYE", "CANCEL", "MESSAGE", "OPTIONS"},
		UnknownMethodAction: Discard,
		ResourcesPath:       "config/resources",
		HTTPAddr:            "0.0.0.0:8080",
		LogLevel:            slog.LevelInfo,
		Registrar:           Registrar{MinExpires: time.Minute, MaxExpires: time.Hour, DefaultExpires: time.Hour},
		Auth:                Auth{Algorithms: []string{"MD5", "SHA-256"}, NonceTTL: 5 * time.Minute},
		Events:              Events{NATSURL: "nats://localhost:4222", Subject: "routr", QueueSize: 65536},
		MaxCallDuration:     4 * time.Hour,
		MaxBindings:         1000000,
		TransactionLinger:   5 * time.Second,
		DrainTimeout:        10 * time.Second,
		GCMinHeapMiB:        192,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaults\n%+v\nwant\n%+v", c, want)
	}
}

// Without CONFIG_PATH the default path is read when it exists.
func TestDefaultPath(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "config"), 0o755)
	os.WriteFile(filepath.Join(dir, DefaultConfigPath), []byte("kind: EdgePort\nref: here\nspec: {transport: [{protocol: tcp, port: 5070}]}\n"), 0o644)
	t.Chdir(dir)
	c, err := Load(envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Path != DefaultConfigPath || c.Ref != "here" || len(c.Transports) != 1 || c.Transports[0].Port != 5070 {
		t.Errorf("config = %+v", c)
	}
}

func TestShippedEdgePort(t *testing.T) {
	c, err := Load(envOf(map[string]string{"CONFIG_PATH": "../../config/edgeport.yaml"}))
	if err != nil {
		t.Fatal(err)
	}
	want := []Transport{{"udp", "0.0.0.0", 5060}, {"tcp", "0.0.0.0", 5060}}
	if !reflect.DeepEqual(c.Transports, want) || len(c.Warnings) != 0 ||
		!reflect.DeepEqual(c.Localnets, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}) {
		t.Errorf("config = %+v", c)
	}
}

// An EdgePort file shaped like Routr's own (processor, securityContext
// with a PKCS#12 store, all five transports).
const routrEdgePort = `kind: EdgePort
apiVersion: v2beta1
ref: edgeport-01
metadata:
  region: us-east1
spec:
  unknownMethodAction: Respond
  processor:
    addr: dispatcher:51901
  securityContext:
    client:
      protocols: [SSLv3, TLSv1.2]
      authType: disabledall
    keyStorePassword: changeme
    trustStorePassword: changeme
    keyStore: /etc/routr/certs/signaling.p12
    trustStore: /etc/routr/certs/signaling.p12
    keyStoreType: pkcs12
  externalAddrs:
    - 10.111.220.2
    - sip01.edgeport.net
  localnets:
    - 127.0.0.1/8
    - 10.111.221.2/24
  methods: [REGISTER, MESSAGE, INVITE, ACK, BYE, cancel]
  transport:
    - protocol: tcp
      port: 5060
    - protocol: UDP
      port: 5060
    - protocol: tls
      port: 5061
      bindAddr: 10.0.0.5
    - protocol: ws
      port: 5062
    - protocol: wss
      port: 5063
`

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRoutrEdgePort(t *testing.T) {
	path := writeFile(t, "edgeport.yaml", routrEdgePort)
	c, err := Load(envOf(map[string]string{"CONFIG_PATH": path}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Ref != "edgeport-01" || c.Region != "us-east1" || c.UnknownMethodAction != Respond || len(c.Warnings) != 0 {
		t.Errorf("config = %+v", c)
	}
	wantT := []Transport{{"tcp", "0.0.0.0", 5060}, {"udp", "0.0.0.0", 5060}, {"tls", "10.0.0.5", 5061}, {"ws", "0.0.0.0", 5062}, {"wss", "0.0.0.0", 5063}}
	if !reflect.DeepEqual(c.Transports, wantT) {
		t.Errorf("transports = %+v", c.Transports)
	}
	if !reflect.DeepEqual(c.ExternalAddrs, []string{"10.111.220.2", "sip01.edgeport.net"}) {
		t.Errorf("externalAddrs = %v", c.ExternalAddrs)
	}
	wantN := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.111.221.0/24")}
	if !reflect.DeepEqual(c.Localnets, wantN) {
		t.Errorf("localnets = %v", c.Localnets)
	}
	if !reflect.DeepEqual(c.Methods, []string{"REGISTER", "MESSAGE", "INVITE", "ACK", "BYE", "CANCEL"}) {
		t.Errorf("methods = %v", c.Methods)
	}
	wantTLS := SecurityContext{
		KeyStore: "/etc/routr/certs/signaling.p12", KeyStorePassword: "changeme", KeyStoreType: "pkcs12",
		TrustStore: "/etc/routr/certs/signaling.p12", TrustStorePassword: "changeme",
		ClientProtocols: []string{"SSLv3", "TLSv1.2"}, ClientAuthType: "DisabledAll",
	}
	if !reflect.DeepEqual(c.TLS, wantTLS) {
		t.Errorf("tls = %+v", c.TLS)
	}

	// The same as JSON.
	jpath := writeFile(t, "edgeport.json", `{"kind": "EdgePort", "apiVersion": "v2", "ref": "e",
  "spec": {"bindAddr": "127.0.0.1", "transport": [{"protocol": "udp", "port": 5080}],
    "unknownField": true}}`)
	c, err = Load(envOf(map[string]string{"CONFIG_PATH": jpath}))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Transports, []Transport{{"udp", "127.0.0.1", 5080}}) {
		t.Errorf("json transports = %+v", c.Transports)
	}
	if want := []string{jpath + ":3: spec.unknownField: unknown field, ignored"}; !reflect.DeepEqual(c.Warnings, want) {
		t.Errorf("warnings = %q, want %q", c.Warnings, want)
	}
}

func TestEnvOverrides(t *testing.T) {
	path := writeFile(t, "edgeport.yaml", routrEdgePort)
	c, err := Load(envOf(map[string]string{
		"CONFIG_PATH":                      path,
		"HOSTNAME":                         "edge-7",
		"PATH_TO_RESOURCES":                "/etc/routr/resources",
		"EXTERNAL_ADDRS":                   " 203.0.113.9 , edge.example.com:5060,",
		"LOCALNETS":                        "192.168.0.0/255.255.0.0,10.0.0.1",
		"IGNORE_LOOPBACK_FROM_LOCALNETS":   "TRUE",
		"ENABLE_HEALTHCHECKS":              "True",
		"ENFORCE_E164":                     "true",
		"CONNECT_VERIFIER_PUBLIC_KEY_PATH": "/etc/routr/connect.pem",
		"CONNECT_VERIFIER_OPTIONS":         `{"algorithms": ["ES256"]}`,
		"HTTP_ADDR":                        ":9090",
		"LOG_LEVEL":                        "verbose",
		"REGISTRAR_MIN_EXPIRES":            "30",
		"REGISTRAR_MAX_EXPIRES":            "2h",
		"REGISTRAR_DEFAULT_EXPIRES":        "600s",
		"AUTH_ALGORITHMS":                  "sha-256, md5",
		"AUTH_NONCE_TTL":                   "90s",
		"AUTH_SECRET":                      "s3cret",
		"NATS_PUBLISHER_ENABLED":           "true",
		"NATS_PUBLISHER_URL":               "nats1:4222,tls://nats2:4443",
		"NATS_PUBLISHER_SUBJECT":           "routr.events",
		"CONSOLE_PUBLISHER_ENABLED":        "yes", // Java: only "true" is true
		"EMBEDDED_NATS":                    "1",
		"EVENTS_QUEUE_SIZE":                "1024",
		"EVENTS_DURABLE":                   "true",
		"EVENTS_STREAM_REPLICAS":           "3",
		"MAX_CALL_DURATION":                "0",
		"LOCATION_MAX_BINDINGS":            "5000",
		"GC_MIN_HEAP":                      "0",
		"SIP_TRANSACTION_LINGER":           "32s",
		"DRAIN_TIMEOUT":                    "45",
	}))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"Ref", c.Ref, "edge-7"},
		{"ResourcesPath", c.ResourcesPath, "/etc/routr/resources"},
		{"ExternalAddrs", c.ExternalAddrs, []string{"203.0.113.9", "edge.example.com:5060"}},
		{"Localnets", c.Localnets, []netip.Prefix{netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("10.0.0.1/32")}},
		{"IgnoreLoopbackFromLocalnets", c.IgnoreLoopbackFromLocalnets, true},
		{"HealthChecks", c.HealthChecks, true},
		{"EnforceE164", c.EnforceE164, true},
		{"EnforceE164MobilePrefix", c.EnforceE164MobilePrefix, false},
		{"ConnectVerifierPublicKeyPath", c.ConnectVerifierPublicKeyPath, "/etc/routr/connect.pem"},
		{"ConnectVerifierOptions", c.ConnectVerifierOptions, `{"algorithms": ["ES256"]}`},
		{"HTTPAddr", c.HTTPAddr, ":9090"},
		{"LogLevel", c.LogLevel, slog.LevelDebug},
		{"Registrar", c.Registrar, Registrar{MinExpires: 30 * time.Second, MaxExpires: 2 * time.Hour, DefaultExpires: 10 * time.Minute}},
		{"Algorithms", c.Auth.Algorithms, []string{"SHA-256", "MD5"}},
		{"NonceTTL", c.Auth.NonceTTL, 90 * time.Second},
		{"Secret", string(c.Auth.Secret), "s3cret"},
		{"Events", c.Events, Events{NATSEnabled: true, NATSURL: "nats://nats1:4222,tls://nats2:4443", Subject: "routr.events",
			Console: false, Embedded: true, QueueSize: 1024, Durable: true, StreamReplicas: 3}},
		{"MaxCallDuration", c.MaxCallDuration, time.Duration(0)},
		{"MaxBindings", c.MaxBindings, 5000},
		{"GCMinHeapMiB", c.GCMinHeapMiB, 0},
		{"TransactionLinger", c.TransactionLinger, 32 * time.Second},
		{"DrainTimeout", c.DrainTimeout, 45 * time.Second},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
}

func TestJavaBooleans(t *testing.T) {
	for v, want := range map[string]bool{"true": true, "TRUE": true, " True ": true, "1": false, "yes": false, "on": false, "false": false, "": false} {
		c, err := load(envOf(map[string]string{"NATS_PUBLISHER_ENABLED": v, "ENABLE_HEALTHCHECKS": v}), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.Events.NATSEnabled != want || c.HealthChecks != want {
			t.Errorf("%q: got %v, want %v", v, c.Events.NATSEnabled, want)
		}
	}
}

func TestBadEnv(t *testing.T) {
	tests := []struct {
		name, value, want string
	}{
		{"EXTERNAL_ADDRS", "1.2.3.4,bad host", `EXTERNAL_ADDRS: "bad host" is not a host or host:port`},
		{"LOCALNETS", "10.0.0.0/8,10.0.0.0/40", `LOCALNETS: "10.0.0.0/40" is not an IP address, CIDR or address/netmask`},
		{"LOCALNETS", "10.0.0.0/255.0.255.0", `LOCALNETS: "10.0.0.0/255.0.255.0": 255.0.255.0 is not a contiguous netmask`},
		{"HTTP_ADDR", "8080", `HTTP_ADDR: invalid address "8080" (want host:port, as in 0.0.0.0:8080)`},
		{"HTTP_ADDR", "0.0.0.0:99999", `HTTP_ADDR: invalid address "0.0.0.0:99999" (want host:port, as in 0.0.0.0:8080)`},
		{"LOG_LEVEL", "loud", `LOG_LEVEL: invalid level "loud" (want error, warn, info, verbose or debug)`},
		{"REGISTRAR_MIN_EXPIRES", "soon", `REGISTRAR_MIN_EXPIRES: invalid duration "soon" (want seconds, or a duration such as 90s, 5m or 4h)`},
		{"REGISTRAR_MIN_EXPIRES", "0", `REGISTRAR_MIN_EXPIRES: 0s is less than 1s`},
		{"REGISTRAR_MAX_EXPIRES", "1.5s", `REGISTRAR_MAX_EXPIRES: 1.5s is not a whole number of seconds`},
		{"REGISTRAR_DEFAULT_EXPIRES", "30", `REGISTRAR_MIN_EXPIRES (1m0s) <= REGISTRAR_DEFAULT_EXPIRES (30s) <= REGISTRAR_MAX_EXPIRES (1h0m0s) does not hold`},
		{"REGISTRAR_DEFAULT_EXPIRES", "-5", `REGISTRAR_DEFAULT_EXPIRES: invalid duration "-5" (want seconds, or a duration such as 90s, 5m or 4h)`},
		{"AUTH_ALGORITHMS", "MD5,SHA-512", `AUTH_ALGORITHMS: unsupported algorithm "SHA-512" (want MD5, SHA-256)`},
		{"AUTH_ALGORITHMS", "MD5,md5", `AUTH_ALGORITHMS: MD5 is listed twice`},
		{"AUTH_ALGORITHMS", ",", `AUTH_ALGORITHMS: no algorithms`},
		{"AUTH_NONCE_TTL", "100ms", `AUTH_NONCE_TTL: 100ms is less than 1s`},
		{"NATS_PUBLISHER_URL", "http://nats:4222", `NATS_PUBLISHER_URL: invalid URL "http://nats:4222" (scheme must be nats, tls, ws or wss)`},
		{"NATS_PUBLISHER_URL", "nats:99999", `NATS_PUBLISHER_URL: invalid port in "nats://nats:99999"`},
		{"NATS_PUBLISHER_URL", "nats://:4222", `NATS_PUBLISHER_URL: invalid URL "nats://:4222" (want nats://host:port)`},
		{"NATS_PUBLISHER_SUBJECT", "routr.>", `NATS_PUBLISHER_SUBJECT: invalid subject "routr.>" (want dot-separated tokens without spaces or wildcards)`},
		{"NATS_PUBLISHER_SUBJECT", "routr..x", `NATS_PUBLISHER_SUBJECT: invalid subject "routr..x" (want dot-separated tokens without spaces or wildcards)`},
		{"EMBEDDED_NATS", "yes", `EMBEDDED_NATS: invalid boolean "yes" (want true or false)`},
		{"EVENTS_DURABLE", "maybe", `EVENTS_DURABLE: invalid boolean "maybe" (want true or false)`},
		{"EVENTS_STREAM_REPLICAS", "7", `EVENTS_STREAM_REPLICAS: invalid value "7" (want an integer from 1 to 5)`},
		{"EVENTS_QUEUE_SIZE", "0", `EVENTS_QUEUE_SIZE: invalid value "0" (want an integer from 1 to 16777216)`},
		{"EVENTS_QUEUE_SIZE", "lots", `EVENTS_QUEUE_SIZE: invalid value "lots" (want an integer from 1 to 16777216)`},
		{"MAX_CALL_DURATION", "-1h", `MAX_CALL_DURATION: -1h0m0s is less than 0s`},
		{"LOCATION_MAX_BINDINGS", "-1", `LOCATION_MAX_BINDINGS: invalid value "-1" (want an integer from 1 to 1073741824)`},
		{"GC_MIN_HEAP", "-1", `GC_MIN_HEAP: invalid value "-1" (want an integer from 0 to 1048576)`},
		{"SIP_TRANSACTION_LINGER", "100ms", `SIP_TRANSACTION_LINGER: 100ms is less than 1s`},
		{"DRAIN_TIMEOUT", "soon", `DRAIN_TIMEOUT: invalid duration "soon" (want seconds, or a duration such as 90s, 5m or 4h)`},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			_, err := load(envOf(map[string]string{tt.name: tt.value}), "", nil)
			if err == nil || err.Error() != tt.want {
				t.Errorf("got %v\nwant %s", err, tt.want)
			}
		})
	}
	// Every bad variable is reported, not only the first.
	_, err := load(envOf(map[string]string{"LOG_LEVEL": "x", "EVENTS_QUEUE_SIZE": "x"}), "", nil)
	if err == nil || strings.Count(err.Error(), "\n") != 1 {
		t.Errorf("want two problems, got %v", err)
	}
}

func TestUnreadableConfigPath(t *testing.T) {
	_, err := Load(envOf(map[string]string{"CONFIG_PATH": filepath.Join(t.TempDir(), "missing.yaml")}))
	if err == nil || !strings.HasPrefix(err.Error(), "CONFIG_PATH: open ") || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("got %v", err)
	}
	_, err = Load(envOf(map[string]string{"CONFIG_PATH": t.TempDir()}))
	if err == nil || !strings.HasPrefix(err.Error(), "CONFIG_PATH: read ") {
		t.Errorf("directory: got %v", err)
	}
}

func TestBadFile(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"yaml syntax", "kind: EdgePort\nspec:\n  transport: [\n", `e.yaml:3: invalid YAML: did not find expected node content`},
		{"empty", "", `e.yaml: invalid YAML: the file is empty`},
		{"not a mapping", "- kind: EdgePort\n", `e.yaml:1: expected an EdgePort resource (a mapping), got a list`},
		{"wrong kind", "kind: Agent\n", `e.yaml:1: kind: expected EdgePort, got "Agent"`},
		{"apiVersion", "kind: EdgePort\napiVersion: v3\n", `e.yaml:2: apiVersion: unsupported apiVersion "v3" (want v2beta1 or v2)`},
		{"spec not a mapping", "kind: EdgePort\nspec: [1]\n", `e.yaml:2: spec: expected a mapping, got a list`},
		{"port type", "spec:\n  transport:\n    - protocol: udp\n      port: fivethousand\n",
			`e.yaml:4: spec.transport[0].port: expected an integer, got string "fivethousand"`},
		{"port range", "spec:\n  transport:\n    - {protocol: udp, port: 70000}\n", `e.yaml:3: spec.transport[0].port: must be 1..65535, got 70000`},
		{"port missing", "spec:\n  transport:\n    - protocol: udp\n", `e.yaml:3: spec.transport[0].port: required field missing`},
		{"protocol", "spec:\n  transport:\n    - protocol: sctp\n      port: 5060\n", `e.yaml:3: spec.transport[0].protocol: invalid value "sctp" (want udp, tcp, tls, ws or wss)`},
		{"protocol missing", "spec:\n  transport:\n    - port: 5060\n", `e.yaml:3: spec.transport[0].protocol: required field missing`},
		{"duplicate protocol", "spec:\n  transport:\n    - {protocol: udp, port: 5060}\n    - {protocol: UDP, port: 5070}\n",
			`e.yaml:4: spec.transport[1].protocol: udp is also spec.transport[0]; one entry per protocol`},
		{"stream port clash", "spec:\n  transport:\n    - {protocol: tcp, port: 5060}\n    - {protocol: ws, port: 5060}\n",
			`e.yaml:4: spec.transport[1].port: port 5060 is also used by spec.transport[0]`},
		{"no transports", "spec:\n  transport: []\n", `e.yaml:2: spec.transport: no transports`},
		{"bindAddr", "spec:\n  bindAddr: localhost\n", `e.yaml:2: spec.bindAddr: "localhost" is not an IP address`},
		{"transport bindAddr", "spec:\n  transport:\n    - {protocol: udp, port: 5060, bindAddr: 1.2.3}\n", `e.yaml:3: spec.transport[0].bindAddr: "1.2.3" is not an IP address`},
		{"tls without keys", "spec:\n  transport:\n    - {protocol: tls, port: 5061}\n", `e.yaml:1: spec.securityContext: tls and wss transports need keyStore, or certFile and keyFile`},
		{"jks", "spec:\n  securityContext: {keyStore: k.jks, keyStoreType: jks}\n  transport:\n    - {protocol: wss, port: 5063}\n",
			`e.yaml:2: spec.securityContext.keyStoreType: unsupported key store type "jks" (want pkcs12)`},
		{"authType", "spec:\n  securityContext:\n    client: {authType: Sometimes}\n", `e.yaml:3: spec.securityContext.client.authType: invalid value "Sometimes" (want Disabled, DisabledAll, Wanted or Required)`},
		{"unknownMethodAction", "spec:\n  unknownMethodAction: Drop\n", `e.yaml:2: spec.unknownMethodAction: invalid value "Drop" (want Discard or Respond)`},
		{"methods", "spec:\n  methods: [INVITE, invite, 'NOT A METHOD', {x: 1}]\n",
			`e.yaml:2: spec.methods[3]: expected a string, got a mapping
e.yaml:2: spec.methods[1]: duplicate method INVITE
e.yaml:2: spec.methods[2]: "NOT A METHOD" is not a SIP method`},
		{"no methods", "spec:\n  methods: []\n", `e.yaml:2: spec.methods: no methods`},
		{"localnets", "spec:\n  localnets:\n    - 10.0.0.0/8\n    - ten\n", `e.yaml:4: spec.localnets[1]: "ten" is not an IP address, CIDR or address/netmask`},
		{"externalAddrs", "spec:\n  externalAddrs: [\"a b\"]\n", `e.yaml:2: spec.externalAddrs[0]: "a b" is not a host or host:port`},
		{"debugging type", "spec:\n  securityContext: {debugging: \"yes\"}\n", `e.yaml:2: spec.securityContext.debugging: expected true or false, got string "yes"`},
		{"duplicate field", "spec:\n  bindAddr: 0.0.0.0\n  bindAddr: 127.0.0.1\n", `e.yaml:3: spec.bindAddr: duplicate field (first at line 2)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(envOf(nil), "e.yaml", []byte(tt.body))
			if err == nil || err.Error() != tt.want {
				t.Errorf("got\n%v\nwant\n%s", err, tt.want)
			}
		})
	}
}
