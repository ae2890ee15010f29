package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/routr-go/routr/internal/apipb/domainspb"
	"github.com/routr-go/routr/internal/apipb/domainspb/domainspbconnect"
)

// testCA issues certificates for the TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns PEM certificate and key for cn.
func (ca *testCA) issue(t *testing.T, cn string, usage x509.ExtKeyUsage) ([]byte, []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTLSClientCertificates: with API_TLS_CLIENT_CA set, a client without
// a certificate from that CA cannot connect; one with it can, over gRPC
// (HTTP/2 via ALPN) and Connect, and the audit line names its subject.
func TestTLSClientCertificates(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	ca := newTestCA(t)
	scert, skey := ca.issue(t, "routr", x509.ExtKeyUsageServerAuth)
	ccert, ckey := ca.issue(t, "operator-1", x509.ExtKeyUsageClientAuth)
	env := map[string]string{
		"API_ADDR":          "127.0.0.1:0",
		"API_TLS_CERT":      writeFile(t, dir, "s.crt", scert),
		"API_TLS_KEY":       writeFile(t, dir, "s.key", skey),
		"API_TLS_CLIENT_CA": writeFile(t, dir, "ca.crt", ca.pem),
	}
	cfg, err := LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(logBuffer{f.log}, nil))
	l, err := Listen(cfg, New(Options{Store: f.st, Logger: log}).Handler(), log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.pem)
	client := func(withCert bool) *http.Client {
		tc := &tls.Config{RootCAs: roots}
		if withCert {
			c, err := tls.X509KeyPair(ccert, ckey)
			if err != nil {
				t.Fatal(err)
			}
			tc.Certificates = []tls.Certificate{c}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true}, Timeout: 10 * time.Second}
	}
	url := "https://" + l.Addr().String()
	for name, opt := range map[string]connect.ClientOption{"grpc": connect.WithGRPC(), "connect": connect.WithProtoJSON()} {
		c := domainspbconnect.NewDomainsClient(client(false), url, opt, connect.WithInterceptors(keyInterceptor(f.key)))
		if _, err := c.List(ctx, connect.NewRequest(&domainspb.ListDomainRequest{})); err == nil {
			t.Errorf("%s without a client certificate: succeeded", name)
		}
		c = domainspbconnect.NewDomainsClient(client(true), url, opt, connect.WithInterceptors(keyInterceptor(f.key)))
		d, err := c.Create(ctx, connect.NewRequest(&domainspb.CreateDomainRequest{Name: "tls", DomainUri: name + ".tls.test"}))
		if err != nil {
			t.Fatalf("%s with a client certificate: %v", name, err)
		}
		if _, err := c.Delete(ctx, connect.NewRequest(&domainspb.DeleteDomainRequest{Ref: d.Msg.Ref})); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(f.log.String(), `"cert":"CN=operator-1"`) {
		t.Errorf("audit lacks the client certificate:\n%s", f.log.String())
	}
}

func TestLoadConfig(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, ""},
		{map[string]string{"API_ADDR": "nohost"}, "API_ADDR"},
		{map[string]string{"API_TLS_CERT": "a"}, "together"},
		{map[string]string{"API_TLS_CLIENT_CA": "a"}, "API_TLS_CLIENT_CA"},
	} {
		c, err := LoadConfig(func(k string) string { return tc.env[k] })
		if tc.want == "" {
			if err != nil || c.Addr != DefaultAddr {
				t.Errorf("%v: %v %v", tc.env, c, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one naming %s", tc.env, err, tc.want)
		}
	}
	// A missing certificate file is named at start-up.
	c, _ := LoadConfig(func(k string) string {
		return map[string]string{"API_TLS_CERT": "/nonexistent.crt", "API_TLS_KEY": "/nonexistent.key"}[k]
	})
	if _, err := Listen(c, http.NotFoundHandler(), slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil || !strings.Contains(err.Error(), "API_TLS_CERT") {
		t.Errorf("missing cert: %v", err)
	}
}
