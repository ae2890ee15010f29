package edge

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/pkcs12"
)

// TLSFiles name the certificate material of the tls and wss listeners, as
// an EdgePort's spec.securityContext gives it: PEM files, or a PKCS#12 key
// store as Routr (JAIN-SIP) reads it.
type TLSFiles struct {
	// CertFile and KeyFile are a PEM certificate chain and its key.
	CertFile string
	KeyFile  string
	// KeyStore is a PKCS#12 file with the certificate chain and key,
	// opened with KeyStorePassword. Used when CertFile is empty.
	KeyStore         string
	KeyStorePassword string
	// TrustStore holds the CAs that client certificates must chain to:
	// PEM certificates, or PKCS#12 opened with TrustStorePassword. Empty
	// means the system roots.
	TrustStore         string
	TrustStorePassword string
	// ClientAuth is client.authType: "Disabled" and "DisabledAll" (or
	// empty) ask for no client certificate, "Wanted" asks for one and
	// checks it when given, "Required" refuses a client without one.
	ClientAuth string
	// Protocols are client.protocols (TLSv1.2, TLSv1.3): the lowest one
	// is the minimum version accepted. Empty means TLS 1.2.
	Protocols []string
}

// LoadTLS builds the server TLS configuration of the tls and wss
// listeners. Every error names the file or the setting at fault, so that a
// bad certificate stops start-up with a message an operator can act on.
func LoadTLS(f TLSFiles) (*tls.Config, error) {
	var cert tls.Certificate
	var err error
	switch {
	case f.CertFile != "" || f.KeyFile != "":
		if f.CertFile == "" || f.KeyFile == "" {
			return nil, errors.New("tls: certFile and keyFile go together")
		}
		cert, err = loadPEMPair(f.CertFile, f.KeyFile)
	case f.KeyStore != "":
		cert, err = loadKeyStore(f.KeyStore, f.KeyStorePassword)
	default:
		return nil, errors.New("tls: no certificate (set keyStore, or certFile and keyFile)")
	}
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
	}
	if v, err := minVersion(f.Protocols); err != nil {
		return nil, err
	} else if v != 0 {
		cfg.MinVersion = v
	}
	switch strings.ToLower(f.ClientAuth) {
	case "", "disabled", "disabledall":
		cfg.ClientAuth = tls.NoClientCert
	case "wanted":
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	case "required", "needed":
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	default:
		return nil, fmt.Errorf("tls: client.authType %q (want Disabled, DisabledAll, Wanted or Required)", f.ClientAuth)
	}
	if cfg.ClientAuth != tls.NoClientCert && f.TrustStore != "" {
		pool, err := loadTrustStore(f.TrustStore, f.TrustStorePassword)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
	}
	return cfg, nil
}

func loadPEMPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: certFile: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: keyFile: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: certFile %s with keyFile %s: %w", certFile, keyFile, err)
	}
	if err := checkLeaf(&cert); err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: certFile %s: %w", certFile, err)
	}
	return cert, nil
}

// loadKeyStore reads a PKCS#12 key store. Only the legacy encryptions
// (3DES, RC2) are understood: OpenSSL 3 and recent keytool write AES by
// default, and the error says how to convert.
func loadKeyStore(path, password string) (tls.Certificate, error) {
	blocks, err := readPKCS12(path, password)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: keyStore: %w", err)
	}
	var buf []byte
	for _, b := range blocks {
		buf = append(buf, pem.EncodeToMemory(&pem.Block{Type: b.Type, Bytes: b.Bytes})...)
	}
	cert, err := tls.X509KeyPair(buf, buf)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: keyStore %s: %w", path, err)
	}
	if err := checkLeaf(&cert); err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: keyStore %s: %w", path, err)
	}
	return cert, nil
}

func readPKCS12(path, password string) ([]*pem.Block, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blocks, err := pkcs12.ToPEM(data, password)
	switch {
	case errors.Is(err, pkcs12.ErrIncorrectPassword):
		return nil, fmt.Errorf("%s: wrong password", path)
	case err != nil && strings.Contains(err.Error(), "unknown"):
		return nil, fmt.Errorf("%s: %w (only legacy PKCS#12 encryption is read: convert with `openssl pkcs12 -legacy`, or give certFile and keyFile)", path, err)
	case err != nil:
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return blocks, nil
}

// loadTrustStore reads the CAs client certificates must chain to.
func loadTrustStore(path, password string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tls: trustStore: %w", err)
	}
	pool := x509.NewCertPool()
	if pool.AppendCertsFromPEM(data) {
		return pool, nil
	}
	blocks, err := readPKCS12(path, password)
	if err != nil {
		return nil, fmt.Errorf("tls: trustStore: %w", err)
	}
	for _, b := range blocks {
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("tls: trustStore %s: %w", path, err)
		}
		pool.AddCert(c)
	}
	return pool, nil
}

// checkLeaf refuses a certificate that cannot serve: parse errors are
// caught by tls.X509KeyPair, an expired certificate is not.
func checkLeaf(cert *tls.Certificate) error {
	if len(cert.Certificate) == 0 {
		return errors.New("no certificate")
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return err
	}
	cert.Leaf = leaf
	if time.Now().After(leaf.NotAfter) {
		return fmt.Errorf("certificate %q expired on %s", leaf.Subject.CommonName, leaf.NotAfter.Format("2006-01-02"))
	}
	return nil
}

func minVersion(protocols []string) (uint16, error) {
	var min uint16
	for _, p := range protocols {
		var v uint16
		switch strings.ToLower(strings.ReplaceAll(p, " ", "")) {
		case "tlsv1.2", "tls1.2":
			v = tls.VersionTLS12
		case "tlsv1.3", "tls1.3":
			v = tls.VersionTLS13
		case "tlsv1", "tlsv1.0", "tlsv1.1", "sslv3":
			continue // no longer offered
		default:
			return 0, fmt.Errorf("tls: client.protocols: unknown protocol %q", p)
		}
		if min == 0 || v < min {
			min = v
		}
	}
	return min, nil
}
