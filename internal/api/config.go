package api

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
)

// DefaultAddr is where the API listens unless API_ADDR says otherwise:
// Routr's API port.
const DefaultAddr = "0.0.0.0:51908"

// Config is the API's listener settings, read from the environment by
// LoadConfig.
type Config struct {
	// Addr is API_ADDR, host:port.
	Addr string
	// CertFile and KeyFile (API_TLS_CERT, API_TLS_KEY) are PEM files;
	// when both are set the API speaks TLS only, else plaintext (h2c for
	// gRPC).
	CertFile, KeyFile string
	// ClientCAFile (API_TLS_CLIENT_CA) is a PEM bundle; when set, clients
	// must present a certificate it signed.
	ClientCAFile string
	// CORSOrigins (API_CORS_ORIGINS, comma-separated) are the browser
	// origins allowed to call the API; "*" allows any.
	CORSOrigins []string
	// TrustedNetworks (API_TRUSTED_NETWORKS, comma-separated IPs or CIDRs)
	// may call without a key, for clients that cannot send one (Routr's
	// rctl). None by default.
	TrustedNetworks []netip.Prefix
}

// LoadConfig reads the API settings from env.
func LoadConfig(env func(string) string) (Config, error) {
	c := Config{
		Addr:         strings.TrimSpace(env("API_ADDR")),
		CertFile:     strings.TrimSpace(env("API_TLS_CERT")),
		KeyFile:      strings.TrimSpace(env("API_TLS_KEY")),
		ClientCAFile: strings.TrimSpace(env("API_TLS_CLIENT_CA")),
	}
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	for o := range strings.SplitSeq(env("API_CORS_ORIGINS"), ",") {
		o = strings.TrimRight(strings.TrimSpace(o), "/")
		if o == "" {
			continue
		}
		if o != "*" && !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			return c, fmt.Errorf("API_CORS_ORIGINS: %q: want an origin such as https://admin.example.com, or *", o)
		}
		c.CORSOrigins = append(c.CORSOrigins, o)
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return c, fmt.Errorf("API_ADDR %q: want host:port: %w", c.Addr, err)
	}
	for n := range strings.SplitSeq(env("API_TRUSTED_NETWORKS"), ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		p, err := netip.ParsePrefix(n)
		if err != nil {
			a, aerr := netip.ParseAddr(n)
			if aerr != nil {
				return c, fmt.Errorf("API_TRUSTED_NETWORKS: %q: want an IP address or a CIDR such as 127.0.0.1/32", n)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		c.TrustedNetworks = append(c.TrustedNetworks, p.Masked())
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return c, fmt.Errorf("API_TLS_CERT and API_TLS_KEY must be set together")
	}
	if c.ClientCAFile != "" && c.CertFile == "" {
		return c, fmt.Errorf("API_TLS_CLIENT_CA needs API_TLS_CERT and API_TLS_KEY")
	}
	return c, nil
}

// TLS returns the server TLS configuration, nil for plaintext. Files are
// read now, so that a bad one stops start-up with its name.
func (c Config) TLS() (*tls.Config, error) {
	if c.CertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("API_TLS_CERT/API_TLS_KEY: %w", err)
	}
	t := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	if c.ClientCAFile != "" {
		pem, err := os.ReadFile(c.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("API_TLS_CLIENT_CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("API_TLS_CLIENT_CA %s: no PEM certificate found", c.ClientCAFile)
		}
		t.ClientCAs = pool
		t.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return t, nil
}
