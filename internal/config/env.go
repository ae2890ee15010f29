package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// envReader applies environment variables, collecting a problem per bad
// value as "NAME: message".
type envReader struct {
	env   func(string) string
	probs []string
}

func (e *envReader) errorf(name, format string, args ...any) {
	e.probs = append(e.probs, name+": "+fmt.Sprintf(format, args...))
}

// get returns the variable, trimmed, and whether it is set (non-empty).
func (e *envReader) get(name string) (string, bool) {
	v := strings.TrimSpace(e.env(name))
	return v, v != ""
}

// list splits a comma-separated variable; empty items are dropped.
func (e *envReader) list(name string) ([]string, bool) {
	v, ok := e.get(name)
	if !ok {
		return nil, false
	}
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out, true
}

// items reads a comma-separated list, converting each item with conv,
// which also gets the items converted so far to refuse repeats. Items
// conv refuses are reported and left out, and a list of nothing but
// commas is reported as having no what. items returns the converted
// items and whether there are any.
func (e *envReader) items(name, what string, conv func(item string, have []string) (string, error)) ([]string, bool) {
	items, ok := e.list(name)
	if !ok {
		return nil, false
	}
	var out []string
	for _, item := range items {
		v, err := conv(item, out)
		if err != nil {
			e.errorf(name, "%v", err)
			continue
		}
		out = append(out, v)
	}
	if len(items) == 0 {
		e.errorf(name, "no %s", what)
	}
	return out, len(out) > 0
}

// javaBool follows Java's Boolean.parseBoolean, as Routr reads its
// switches: true only for "true" in any case, false for anything else.
func (e *envReader) javaBool(name string, dst *bool) {
	if v, ok := e.get(name); ok {
		*dst = strings.EqualFold(v, "true")
	}
}

// strictBool is for routr-go's own switches: true/false/1/0 (any case),
// anything else is an error.
func (e *envReader) strictBool(name string, dst *bool) {
	v, ok := e.get(name)
	if !ok {
		return
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e.errorf(name, "invalid boolean %q (want true or false)", v)
		return
	}
	*dst = b
}

// positive reads an integer in 1..max.
func (e *envReader) positive(name string, max int, dst *int) { e.intIn(name, 1, max, dst) }

// count reads an integer from 0 to max.
func (e *envReader) count(name string, max int, dst *int) { e.intIn(name, 0, max, dst) }

// intIn reads an integer from min to max.
func (e *envReader) intIn(name string, min, max int, dst *int) {
	v, ok := e.get(name)
	if !ok {
		return
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		e.errorf(name, "invalid value %q (want an integer from %d to %d)", v, min, max)
		return
	}
	*dst = n
}

// duration reads a Go duration ("90s", "5m", "4h") or a plain number of
// seconds. min is the smallest value accepted; whole requires whole
// seconds.
func (e *envReader) duration(name string, min time.Duration, whole bool, dst *time.Duration) {
	v, ok := e.get(name)
	if !ok {
		return
	}
	d, err := parseDuration(v)
	switch {
	case err != nil:
		e.errorf(name, "invalid duration %q (want seconds, or a duration such as 90s, 5m or 4h)", v)
	case d < min:
		e.errorf(name, "%s is less than %s", d, min)
	case whole && d%time.Second != 0:
		e.errorf(name, "%s is not a whole number of seconds", d)
	default:
		*dst = d
	}
}

func parseDuration(v string) (time.Duration, error) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 || n > int64(1<<63-1)/int64(time.Second) {
			return 0, fmt.Errorf("out of range")
		}
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(v)
}

// applyEnv overrides cfg with the environment; see the package doc.
func applyEnv(cfg *Config, env func(string) string) []string {
	e := &envReader{env: env}

	if v, ok := e.get("HOSTNAME"); ok {
		cfg.Ref = v
	}
	if v, ok := e.get("PATH_TO_RESOURCES"); ok {
		cfg.ResourcesPath = v
	}
	if addrs, ok := e.list("EXTERNAL_ADDRS"); ok {
		cfg.ExternalAddrs = nil
		for _, a := range addrs {
			if !validHostPort(a) {
				e.errorf("EXTERNAL_ADDRS", "%q is not a host or host:port", a)
				continue
			}
			cfg.ExternalAddrs = append(cfg.ExternalAddrs, a)
		}
	}
	if nets, ok := e.list("LOCALNETS"); ok {
		cfg.Localnets = nil
		for _, n := range nets {
			p, err := parseNet(n)
			if err != nil {
				e.errorf("LOCALNETS", "%v", err)
				continue
			}
			cfg.Localnets = append(cfg.Localnets, p)
		}
	}
	e.javaBool("IGNORE_LOOPBACK_FROM_LOCALNETS", &cfg.IgnoreLoopbackFromLocalnets)

	e.javaBool("ENABLE_HEALTHCHECKS", &cfg.HealthChecks)
	e.javaBool("ENFORCE_E164", &cfg.EnforceE164)
	e.javaBool("ENFORCE_E164_WITH_MOBILE_PREFIX", &cfg.EnforceE164MobilePrefix)
	if v, ok := e.get("CONNECT_VERIFIER_PUBLIC_KEY_PATH"); ok {
		cfg.ConnectVerifierPublicKeyPath = v
	}
	if v, ok := e.get("CONNECT_VERIFIER_OPTIONS"); ok {
		if !json.Valid([]byte(v)) {
			e.errorf("CONNECT_VERIFIER_OPTIONS", "not JSON: %q", v)
		} else {
			cfg.ConnectVerifierOptions = v
		}
	}
	if v, ok := e.get("HTTP_ADDR"); ok {
		if h, p, err := net.SplitHostPort(v); err != nil || (h != "" && !validHostPort(h)) || !validPort(p) {
			e.errorf("HTTP_ADDR", "invalid address %q (want host:port, as in 0.0.0.0:8080)", v)
		} else {
			cfg.HTTPAddr = v
		}
	}
	if v, ok := e.get("LOG_LEVEL"); ok {
		if l, ok := logLevel(v); ok {
			cfg.LogLevel = l
		} else {
			e.errorf("LOG_LEVEL", "invalid level %q (want error, warn, info, verbose or debug)", v)
		}
	}

	e.duration("REGISTRAR_MIN_EXPIRES", time.Second, true, &cfg.Registrar.MinExpires)
	e.duration("REGISTRAR_MAX_EXPIRES", time.Second, true, &cfg.Registrar.MaxExpires)
	e.duration("REGISTRAR_DEFAULT_EXPIRES", time.Second, true, &cfg.Registrar.DefaultExpires)

	if algs, ok := e.items("AUTH_ALGORITHMS", "algorithms", authAlgorithm); ok {
		cfg.Auth.Algorithms = algs
	}
	e.duration("AUTH_NONCE_TTL", time.Second, false, &cfg.Auth.NonceTTL)
	if v := e.env("AUTH_SECRET"); v != "" {
		cfg.Auth.Secret = []byte(v)
	}

	e.javaBool("NATS_PUBLISHER_ENABLED", &cfg.Events.NATSEnabled)
	// A server listed twice is not an error.
	anyURL := func(u string, _ []string) (string, error) { return natsURL(u) }
	if urls, ok := e.items("NATS_PUBLISHER_URL", "URLs", anyURL); ok {
		cfg.Events.NATSURL = strings.Join(urls, ",")
	}
	if v, ok := e.get("NATS_PUBLISHER_SUBJECT"); ok {
		if err := checkSubject(v); err != nil {
			e.errorf("NATS_PUBLISHER_SUBJECT", "%v", err)
		} else {
			cfg.Events.Subject = v
		}
	}
	e.javaBool("CONSOLE_PUBLISHER_ENABLED", &cfg.Events.Console)
	e.strictBool("EMBEDDED_NATS", &cfg.Events.Embedded)
	e.positive("EVENTS_QUEUE_SIZE", 1<<24, &cfg.Events.QueueSize)
	e.strictBool("EVENTS_DURABLE", &cfg.Events.Durable)
	e.positive("EVENTS_STREAM_REPLICAS", 5, &cfg.Events.StreamReplicas)

	e.duration("MAX_CALL_DURATION", 0, false, &cfg.MaxCallDuration)
	e.positive("LOCATION_MAX_BINDINGS", 1<<30, &cfg.MaxBindings)
	e.duration("SIP_TRANSACTION_LINGER", time.Second, false, &cfg.TransactionLinger)
	e.duration("DRAIN_TIMEOUT", 0, false, &cfg.DrainTimeout)
	e.positive("SIP_UDP_SOCKETS", 256, &cfg.UDPSockets)
	e.positive("SIP_RESPONSE_CACHE_SIZE", 1<<32-1, &cfg.ResponseCacheSize)
	e.count("GC_MIN_HEAP", 1<<20, &cfg.GCMinHeapMiB)
	applyGuardEnv(e, &cfg.Guard)
	applyStorageEnv(e, &cfg.Storage)
	applyLimitsEnv(e, &cfg.Limits)
	applyClusterEnv(e, &cfg.Cluster)
	return e.probs
}

// applyGuardEnv reads the GUARD_* variables.
func applyGuardEnv(e *envReader, g *Guard) {
	if agents, ok := e.list("GUARD_SCANNER_USER_AGENTS"); ok {
		g.ScannerAgents = []string{}
		if !(len(agents) == 1 && strings.EqualFold(agents[0], "none")) {
			g.ScannerAgents = agents
		}
	}
	if v, ok := e.get("GUARD_RATE"); ok {
		r, err := strconv.ParseFloat(v, 64)
		switch {
		case err != nil || r < 0 || r > 1e9:
			e.errorf("GUARD_RATE", "invalid rate %q (want requests per second, 0 to turn the limit off)", v)
		case r == 0:
			g.Rate = -1
		default:
			g.Rate = r
		}
	}
	e.positive("GUARD_BURST", 1<<30, &g.Burst)
	e.duration("GUARD_BAN_TIME", time.Second, false, &g.BanTime)
	if v, ok := e.get("GUARD_MAX_AUTH_FAILURES"); ok {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil || n < 0:
			e.errorf("GUARD_MAX_AUTH_FAILURES", "invalid value %q (want a count, 0 to turn the cap off)", v)
		case n == 0:
			g.MaxAuthFailures = -1
		default:
			g.MaxAuthFailures = n
		}
	}
	e.positive("GUARD_MAX_SOURCES", 1<<24, &g.MaxSources)
	if nets, ok := e.list("GUARD_EXEMPT"); ok {
		g.Exempt = nil
		for _, n := range nets {
			p, err := parseNet(n)
			if err != nil {
				e.errorf("GUARD_EXEMPT", "%v", err)
				continue
			}
			g.Exempt = append(g.Exempt, p)
		}
	}
	e.strictBool("GUARD_LIMIT_LOOPBACK", &g.LimitLoopback)
}

// logLevel maps Routr's log levels (winston's: error, warn, info, http,
// verbose, debug, silly) onto slog's.
func logLevel(v string) (slog.Level, bool) {
	switch strings.ToLower(v) {
	case "error":
		return slog.LevelError, true
	case "warn", "warning":
		return slog.LevelWarn, true
	case "info", "http":
		return slog.LevelInfo, true
	case "verbose", "debug", "silly":
		return slog.LevelDebug, true
	}
	return 0, false
}

// authAlgorithm returns the canonical name of a digest algorithm not
// already in have.
func authAlgorithm(a string, have []string) (string, error) {
	switch strings.ToUpper(a) {
	case "MD5":
		a = "MD5"
	case "SHA-256", "SHA256":
		a = "SHA-256"
	default:
		return "", fmt.Errorf("unsupported algorithm %q (want MD5, SHA-256)", a)
	}
	if slices.Contains(have, a) {
		return "", fmt.Errorf("%s is listed twice", a)
	}
	return a, nil
}

// natsURL normalizes one NATS server address: host:port without a scheme
// gets nats://.
func natsURL(s string) (string, error) {
	if !strings.Contains(s, "://") {
		s = "nats://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("invalid URL %q", s)
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return "", fmt.Errorf("invalid URL %q (scheme must be nats, tls, ws or wss)", s)
	}
	if u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return "", fmt.Errorf("invalid URL %q (want nats://host:port)", s)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("invalid port in %q", s)
		}
	}
	return s, nil
}

// checkSubject accepts a NATS subject to publish on: dot-separated
// non-empty tokens without spaces or wildcards.
func checkSubject(s string) error {
	for _, tok := range strings.Split(s, ".") {
		if tok == "" || tok == "*" || tok == ">" || strings.ContainsAny(tok, " \t\r\n") {
			return fmt.Errorf("invalid subject %q (want dot-separated tokens without spaces or wildcards)", s)
		}
	}
	return nil
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}
