package config

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"time"
)

// DefaultConfigPath is the EdgePort file read when CONFIG_PATH is not set,
// as Routr's launcher does; it is relative to the working directory, and
// its absence means built-in defaults.
const DefaultConfigPath = "config/edgeport.yaml"

// Config is everything routr-go is configured with.
type Config struct {
	// Path is the EdgePort file that was read; empty when none was.
	Path string
	// Ref names this edge in events (EdgePort ref; HOSTNAME overrides it,
	// as in Routr).
	Ref string
	// Region is metadata.region (reserved, as in Routr).
	Region string

	// BindAddr is spec.bindAddr, the default listen address.
	BindAddr string
	// Transports are spec.transport, each with its BindAddr filled in.
	Transports []Transport
	// ExternalAddrs are the addresses (host or host:port) the edge
	// advertises when it is behind NAT: spec.externalAddrs or
	// EXTERNAL_ADDRS.
	ExternalAddrs []string
	// Localnets are the networks considered local (not behind the NAT):
	// spec.localnets or LOCALNETS. Empty means "detect from the
	// interfaces", which the edge does.
	Localnets []netip.Prefix
	// IgnoreLoopbackFromLocalnets leaves loopback out of detected
	// localnets (IGNORE_LOOPBACK_FROM_LOCALNETS).
	IgnoreLoopbackFromLocalnets bool
	// Methods are the SIP methods accepted (spec.methods), upper case.
	Methods []string
	// UnknownMethodAction is what to do with requests whose method is not
	// in Methods (spec.unknownMethodAction).
	UnknownMethodAction UnknownMethodAction
	// TLS is spec.securityContext, needed by tls and wss transports.
	TLS SecurityContext

	// ResourcesPath is the resources directory (PATH_TO_RESOURCES).
	ResourcesPath string
	// Storage selects files or a database for resources (storage.go).
	Storage Storage
	// HTTPAddr is where the health and metrics endpoints listen.
	HTTPAddr string
	// HealthChecks enables GET /healthz (ENABLE_HEALTHCHECKS).
	HealthChecks bool
	// EnforceE164 rewrites telephone numbers in From, To and the
	// Request-URI as E.164 before routing (ENFORCE_E164).
	EnforceE164 bool
	// EnforceE164MobilePrefix accepts only mobile numbers as such
	// (ENFORCE_E164_WITH_MOBILE_PREFIX).
	EnforceE164MobilePrefix bool
	// ConnectVerifierPublicKeyPath is the PEM public key that verifies
	// X-Connect-Token headers (CONNECT_VERIFIER_PUBLIC_KEY_PATH); empty
	// means tokens are not accepted.
	ConnectVerifierPublicKeyPath string
	// ConnectVerifierOptions is CONNECT_VERIFIER_OPTIONS, JSON as Routr
	// reads it (algorithms, issuer, audience).
	ConnectVerifierOptions string
	// LogLevel is LOG_LEVEL.
	LogLevel slog.Level

	// Registrar bounds REGISTER expiry.
	Registrar Registrar
	// Auth configures digest authentication.
	Auth Auth
	// Events configures the event publishers.
	Events Events

	// MaxCallDuration ends calls that last longer; 0 means no limit.
	MaxCallDuration time.Duration
	// MaxBindings caps the location service's bindings.
	MaxBindings int
	// TransactionLinger is how long a finished transaction is kept over
	// UDP to absorb retransmissions (RFC 3261 Timers D, J and L, whose
	// RFC value is 32 s). Kamailio keeps them 5 s (tm's wt_timer); so do
	// we by default, which bounds memory under load.
	TransactionLinger time.Duration
	// DrainTimeout bounds the drain on SIGTERM (DRAIN_TIMEOUT): how long
	// the edge keeps serving the transactions and calls it has while it
	// refuses new ones.
	DrainTimeout time.Duration
	// UDPSockets is how many sockets serve each UDP listener (SO_REUSEPORT);
	// 0 means one per GOMAXPROCS.
	UDPSockets int
	// ResponseCacheSize bounds, in bytes, the final responses to
	// non-INVITE requests kept to answer retransmissions; 0 means 32 MiB.
	ResponseCacheSize int
	// GCMinHeapMiB (GC_MIN_HEAP) is the heap size, in MiB, below which
	// the collector does not run where GOGC alone would run it (a small
	// live heap under load); 0 turns it off. Ignored when GOGC is set.
	GCMinHeapMiB int

	// Guard configures the flood guard (GUARD_* variables).
	Guard Guard
	// Limits caps messages, transactions and connections.
	Limits Limits
	// Cluster configures instances sharing state (LOCATION_STORE,
	// CLUSTER_*).
	Cluster Cluster

	// Warnings are non-fatal findings about the file, such as unknown
	// fields, one per line as "file:line: field: message".
	Warnings []string
}

// Guard configures the edge's flood guard. Zero values mean the edge's
// defaults; a negative Rate or MaxAuthFailures turns that check off.
type Guard struct {
	// ScannerAgents replaces the default scanner User-Agent substrings
	// (GUARD_SCANNER_USER_AGENTS); nil keeps the defaults, an empty
	// non-nil list ("none") turns the check off.
	ScannerAgents []string
	// Rate and Burst are the per-source request rate limit
	// (GUARD_RATE, GUARD_BURST).
	Rate  float64
	Burst int
	// BanTime is how long a ban lasts (GUARD_BAN_TIME).
	BanTime time.Duration
	// MaxAuthFailures caps failed authentications per source and per
	// user within BanTime (GUARD_MAX_AUTH_FAILURES).
	MaxAuthFailures int
	// MaxSources bounds the sources tracked (GUARD_MAX_SOURCES).
	MaxSources int
	// Exempt are networks never rate-limited or banned (GUARD_EXEMPT).
	Exempt []netip.Prefix
	// LimitLoopback applies the limits to loopback too
	// (GUARD_LIMIT_LOOPBACK).
	LimitLoopback bool
}

// Transport is one listening point.
type Transport struct {
	// Protocol is "udp", "tcp", "tls", "ws" or "wss".
	Protocol string
	// BindAddr is the transport's bindAddr, or the spec's.
	BindAddr string
	// Port is 1..65535.
	Port int
}

// Secure reports whether the transport needs TLS material.
func (t Transport) Secure() bool { return t.Protocol == "tls" || t.Protocol == "wss" }

// UnknownMethodAction is Routr's spec.unknownMethodAction.
type UnknownMethodAction string

// Unknown method actions.
const (
	// Discard drops requests with a method not in Methods, without answer.
	Discard UnknownMethodAction = "Discard"
	// Respond answers them 405 Method Not Allowed.
	Respond UnknownMethodAction = "Respond"
)

// SecurityContext is spec.securityContext. Routr (JAIN-SIP) reads a
// PKCS#12 key store; routr-go does too, and also takes PEM files
// (CertFile, KeyFile), an extension of ours.
type SecurityContext struct {
	// KeyStore is the path of the PKCS#12 file with the certificate chain
	// and private key (keyStore).
	KeyStore string
	// KeyStorePassword opens KeyStore (keyStorePassword).
	KeyStorePassword string
	// KeyStoreType is "pkcs12" (keyStoreType); other types are refused.
	KeyStoreType string
	// TrustStore is the path of the PKCS#12 file with trusted CAs for
	// client certificates (trustStore).
	TrustStore string
	// TrustStorePassword opens TrustStore (trustStorePassword).
	TrustStorePassword string
	// ClientProtocols are client.protocols, such as "TLSv1.2".
	ClientProtocols []string
	// ClientAuthType is client.authType: "Disabled", "DisabledAll",
	// "Wanted" or "Required" (whether client certificates are asked for).
	ClientAuthType string
	// Debugging is debugging.
	Debugging bool
	// CertFile is a PEM certificate chain (certFile; ours).
	CertFile string
	// KeyFile is the PEM private key for CertFile (keyFile; ours).
	KeyFile string
}

// Configured reports whether TLS material is set.
func (s SecurityContext) Configured() bool {
	return s.KeyStore != "" || s.CertFile != "" && s.KeyFile != ""
}

// Registrar bounds the expiry of registrations.
type Registrar struct {
	// MinExpires is the shortest expiry accepted; shorter requests get
	// 423 Interval Too Brief with Min-Expires.
	MinExpires time.Duration
	// MaxExpires caps the expiry granted.
	MaxExpires time.Duration
	// DefaultExpires is granted when the request asks for none.
	DefaultExpires time.Duration
}

// Auth configures digest authentication.
type Auth struct {
	// Algorithms are offered in this order: "MD5", "SHA-256".
	Algorithms []string
	// NonceTTL is how long a nonce is good for.
	NonceTTL time.Duration
	// Secret keys the nonces; instances that share it accept each
	// other's nonces.
	Secret []byte
}

// Events configures the event publishers.
type Events struct {
	// NATSEnabled publishes events to NATS (NATS_PUBLISHER_ENABLED).
	NATSEnabled bool
	// NATSURL is a comma-separated list of NATS server URLs.
	NATSURL string
	// Subject is the NATS subject events are published on.
	Subject string
	// Console prints events to standard output.
	Console bool
	// Embedded starts an in-process NATS server.
	Embedded bool
	// QueueSize bounds the queue between the SIP path and the
	// publishers.
	QueueSize int
	// Durable publishes through JetStream.
	Durable bool
	// StreamReplicas is EVENTS_STREAM_REPLICAS, the replicas of the
	// events stream when the edge creates it; 0 means 3, or 1 when the
	// NATS cluster is smaller.
	StreamReplicas int
}

// Default returns the configuration used when there is no file and no
// environment: udp and tcp on 0.0.0.0:5060. Its Auth.Secret is nil; Load
// fills it.
func Default() *Config {
	return &Config{
		Ref:                 "edgeport-01",
		BindAddr:            "0.0.0.0",
		Transports:          []Transport{{"udp", "0.0.0.0", 5060}, {"tcp", "0.0.0.0", 5060}},
		Methods:             []string{"REGISTER", "INVITE", "ACK", "BYE", "CANCEL", "MESSAGE", "OPTIONS"},
		UnknownMethodAction: Discard,
		ResourcesPath:       "config/resources",
		HTTPAddr:            "0.0.0.0:8080",
		LogLevel:            slog.LevelInfo,
		Registrar: Registrar{
			MinExpires:     60 * time.Second,
			MaxExpires:     3600 * time.Second,
			DefaultExpires: 3600 * time.Second,
		},
		Auth: Auth{
			Algorithms: []string{"MD5", "SHA-256"},
			NonceTTL:   5 * time.Minute,
		},
		Events: Events{
			NATSURL:   "nats://localhost:4222",
			Subject:   "routr",
			QueueSize: 65536,
		},
		MaxCallDuration:   4 * time.Hour,
		MaxBindings:       1_000_000,
		TransactionLinger: 5 * time.Second,
		DrainTimeout:      10 * time.Second,
		GCMinHeapMiB:      192,
	}
}

// Load builds the configuration from the EdgePort file named by
// CONFIG_PATH and the environment variables listed in the package doc;
// env is os.Getenv in production. Without CONFIG_PATH, DefaultConfigPath
// is read if it exists; a CONFIG_PATH that cannot be read is an error.
// The error lists every problem, one per line, each naming the file, line
// and field or the variable.
func Load(env func(string) string) (*Config, error) {
	path := env("CONFIG_PATH")
	explicit := path != ""
	if !explicit {
		path = DefaultConfigPath
	}
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
	case !explicit && errors.Is(err, fs.ErrNotExist):
		path, data = "", nil
	default:
		return nil, fmt.Errorf("CONFIG_PATH: %w", err)
	}
	return load(env, path, data)
}

// load is Load once the file (if any) has been read.
func load(env func(string) string, path string, data []byte) (*Config, error) {
	cfg := Default()
	var probs []string
	if path != "" {
		cfg.Path = path
		f := newFileDecoder(path)
		f.edgePort(cfg, data)
		probs = append(probs, sorted(f.probs)...)
		cfg.Warnings = sorted(f.warnings)
	}
	probs = append(probs, applyEnv(cfg, env)...)
	probs = append(probs, check(cfg)...)
	if len(probs) > 0 {
		errs := make([]error, len(probs))
		for i, p := range probs {
			errs[i] = errors.New(p)
		}
		return nil, errors.Join(errs...)
	}
	if len(cfg.Auth.Secret) == 0 {
		cfg.Auth.Secret = make([]byte, 32)
		rand.Read(cfg.Auth.Secret)
	}
	return cfg, nil
}

// check validates what involves more than one setting.
func check(cfg *Config) []string {
	var probs []string
	r := cfg.Registrar
	if r.MinExpires > r.DefaultExpires || r.DefaultExpires > r.MaxExpires {
		probs = append(probs, fmt.Sprintf(
			"REGISTRAR_MIN_EXPIRES (%s) <= REGISTRAR_DEFAULT_EXPIRES (%s) <= REGISTRAR_MAX_EXPIRES (%s) does not hold",
			r.MinExpires, r.DefaultExpires, r.MaxExpires))
	}
	return probs
}
