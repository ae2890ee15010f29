package edge

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/routr-go/routr/internal/auth"
	"github.com/routr-go/routr/internal/calls"
	"github.com/routr-go/routr/internal/events"
	"github.com/routr-go/routr/internal/location"
	"github.com/routr-go/routr/internal/resources"
	"github.com/routr-go/routr/internal/siptest"
)

// allTransports is every protocol the edge listens on.
var allTransports = []string{"udp", "tcp", "tls", "ws", "wss"}

// multiEdge is an edge listening on every transport of loopback, with a
// certificate from a CA the test made.
type multiEdge struct {
	*testEdge
	pki *testPKI
}

func startMultiEdge(t *testing.T, files func(*testPKI) TLSFiles, adjust func(*Options)) *multiEdge {
	t.Helper()
	pki := newTestPKI(t)
	tf := TLSFiles{CertFile: pki.certFile, KeyFile: pki.keyFile}
	if files != nil {
		tf = files(pki)
	}
	tc, err := LoadTLS(tf)
	if err != nil {
		t.Fatal(err)
	}
	var ls []Listener
	for _, p := range allTransports {
		ls = append(ls, Listener{Protocol: p, Addr: "127.0.0.1:0", TLS: tc})
	}
	set, err := resources.LoadDir("../../config/resources")
	if err != nil {
		t.Fatal(err)
	}
	dg, err := auth.New(auth.Config{Algorithms: []string{"MD5", "SHA-256"}})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	loc := location.NewMemory(location.MemoryOptions{MaxBindings: 10000})
	level := slog.LevelError + 4 // sipgo logs every dropped connection at Error
	if os.Getenv("EDGE_DEBUG") != "" {
		level = slog.LevelDebug
	}
	o := Options{
		Listeners:  ls,
		Registrar:  RegistrarOptions{MinExpires: 60 * time.Second, MaxExpires: time.Hour, DefaultExpires: time.Hour},
		Resources:  resources.NewHolder(set),
		Auth:       dg,
		Location:   loc,
		Calls:      calls.NewTracker(calls.Options{Sink: rec}),
		Events:     rec,
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
		Registerer: prometheus.NewRegistry(),
	}
	if adjust != nil {
		adjust(&o)
	}
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	go loc.Run(ctx)
	select {
	case <-srv.Ready():
	case err := <-done:
		cancel()
		t.Fatal(err)
	}
	te := &testEdge{srv: srv, rec: rec, loc: loc, udp: srv.Addr("udp").String(), tcp: srv.Addr("tcp").String()}
	te.stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("edge did not stop")
		}
	}
	t.Cleanup(te.stop)
	return &multiEdge{testEdge: te, pki: pki}
}

// phoneOver opens a phone over transport that checks the edge's
// certificate against the test CA.
func (me *multiEdge) phoneOver(t *testing.T, transport, user string, withCert bool) *siptest.Phone {
	t.Helper()
	p, err := me.dial(transport, user, withCert)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func (me *multiEdge) dial(transport, user string, withCert bool) (*siptest.Phone, error) {
	addr := me.srv.Addr(transport)
	if addr.Addr().IsUnspecified() {
		addr = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), addr.Port())
	}
	return siptest.NewPhoneWith(transport, user, "sip.local", "1234", addr.String(),
		siptest.Options{TLS: me.pki.clientTLS(withCert)})
}

// TestRegisterAndCallOverEachTransport registers the callee, calls it and
// hangs up from either side, both phones on the same transport.
func TestRegisterAndCallOverEachTransport(t *testing.T) {
	me := startMultiEdge(t, nil, nil)
	for _, tp := range []string{"tls", "ws", "wss"} {
		t.Run(tp, func(t *testing.T) {
			a := me.phoneOver(t, tp, "1001", false)
			b := me.phoneOver(t, tp, "1002", false)
			res, err := b.Register(300, "SHA-256")
			if err != nil || res.StatusCode != 200 {
				t.Fatalf("register over %s: %v %v", tp, res, err)
			}
			// The 200 lists every binding: the previous subtest's may not
			// have gone yet.
			listed := false
			for _, h := range res.GetHeaders("Contact") {
				listed = listed || strings.Contains(h.Value(), "transport="+tp)
			}
			if !listed {
				t.Fatalf("200 lists %v, want the %s contact", res.GetHeaders("Contact"), tp)
			}
			for i, callerHangsUp := range []bool{true, false} {
				c := siptest.Dial(t, a, b, "1002", "call-"+tp+"-"+string(rune('a'+i)))
				in := c.Received
				if v := in.Via(); v.Transport != strings.ToUpper(tp) {
					t.Fatalf("callee's top Via %s, want %s", v, strings.ToUpper(tp))
				}
				if strings.HasPrefix(tp, "ws") && !strings.HasSuffix(in.Recipient.Host, ".invalid") {
					t.Fatalf("Request-URI %s is not the RFC 7118 contact", in.Recipient.String())
				}
				// Same transport, same listener: one Record-Route.
				rrs := in.GetHeaders("Record-Route")
				if len(rrs) != 1 || !strings.Contains(rrs[0].Value(), "transport="+tp) {
					t.Fatalf("Record-Route over %s: %v", tp, rrs)
				}
				ok := c.Answer()
				c.Hangup(ok, callerHangsUp)
				me.wantEvents(t, c.CallID, events.TypeCallStarted, events.TypeCallAnswered, events.TypeCallEnded)
			}
		})
	}
}

// TestMixedTransportCalls calls between a WebSocket agent and a UDP or TCP
// agent in both directions: Record-Route is doubled with the transport of
// each side (RFC 5658), and requests to the WebSocket agent reach it over
// its own connection though its Via and Contact name .invalid hosts.
func TestMixedTransportCalls(t *testing.T) {
	me := startMultiEdge(t, nil, nil)
	cases := []struct{ caller, callee string }{
		{"wss", "udp"}, {"udp", "wss"}, {"ws", "tcp"}, {"tls", "wss"},
	}
	for _, tc := range cases {
		t.Run(tc.caller+"-to-"+tc.callee, func(t *testing.T) {
			a := me.phoneOver(t, tc.caller, "1001", false)
			b := me.phoneOver(t, tc.callee, "1002", false)
			mustRegister(t, b)
			c := siptest.Dial(t, a, b, "1002", "mixed-"+tc.caller+"-"+tc.callee)
			rrs := c.Received.GetHeaders("Record-Route")
			if len(rrs) != 2 {
				t.Fatalf("callee sees %d Record-Routes, want 2: %v", len(rrs), rrs)
			}
			// The callee's side first: that is where its requests enter.
			wantRR := []string{tc.callee, tc.caller}
			for i, h := range rrs {
				u := h.(*sip.RecordRouteHeader).Address
				if got, _ := u.UriParams.Get("transport"); got != wantRR[i] {
					t.Fatalf("Record-Route %d is %s, want transport=%s", i, u.String(), wantRR[i])
				}
				if int(me.srv.Addr(wantRR[i]).Port()) != u.Port {
					t.Fatalf("Record-Route %d port %d, want the %s listener's %d", i, u.Port, wantRR[i], me.srv.Addr(wantRR[i]).Port())
				}
				if _, ok := u.UriParams.Get("r2"); !ok {
					t.Fatalf("doubled Record-Route %s without r2=on (RFC 5658)", u.String())
				}
			}
			if v := c.Received.Via(); v.Transport != strings.ToUpper(tc.callee) {
				t.Fatalf("callee's top Via %s", v)
			}
			ok := c.Answer()
			if n := len(ok.GetHeaders("Record-Route")); n != 2 {
				t.Fatalf("caller's 200 has %d Record-Routes", n)
			}
			// The callee hangs up: its BYE crosses back to the caller's
			// transport, to a WebSocket caller over its connection.
			c.Hangup(ok, false)
			me.wantEvents(t, c.CallID, events.TypeCallStarted, events.TypeCallAnswered, events.TypeCallEnded)
		})
	}
}

// TestClientCertificates checks client.authType: Required refuses a phone
// without a certificate from the trust store and serves one with it.
func TestClientCertificates(t *testing.T) {
	me := startMultiEdge(t, func(p *testPKI) TLSFiles {
		return TLSFiles{CertFile: p.certFile, KeyFile: p.keyFile, TrustStore: p.caFile, ClientAuth: "Required"}
	}, nil)
	for _, tp := range []string{"tls", "wss"} {
		t.Run(tp, func(t *testing.T) {
			if p, err := me.dial(tp, "1002", false); err == nil {
				// TLS 1.3 reports the refusal on the first read.
				res, rerr := p.Register(300, "")
				p.Close()
				if rerr == nil {
					t.Fatalf("phone without certificate registered over %s: %v", tp, res)
				}
			}
			b := me.phoneOver(t, tp, "1002", true)
			mustRegister(t, b)
		})
	}
}

// TestLoadTLSErrors checks that bad certificate material stops start-up
// with a message naming the file.
func TestLoadTLSErrors(t *testing.T) {
	pki := newTestPKI(t)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	expired := pki.write(t, "expired.crt", "CERTIFICATE", pki.sign(t, "127.0.0.1", pki.serverKey, time.Now().Add(-time.Hour), 1))
	missing := filepath.Join(dir, "missing.crt")
	cases := []struct {
		name string
		f    TLSFiles
		want string
	}{
		{"missing cert", TLSFiles{CertFile: missing, KeyFile: pki.keyFile}, missing},
		{"missing key", TLSFiles{CertFile: pki.certFile, KeyFile: missing}, missing},
		{"garbage cert", TLSFiles{CertFile: garbage, KeyFile: pki.keyFile}, garbage},
		{"key of another cert", TLSFiles{CertFile: pki.caFile, KeyFile: pki.keyFile}, pki.caFile},
		{"expired", TLSFiles{CertFile: expired, KeyFile: pki.keyFile}, "expired"},
		{"missing key store", TLSFiles{KeyStore: missing}, missing},
		{"garbage key store", TLSFiles{KeyStore: garbage}, garbage},
		{"nothing", TLSFiles{}, "no certificate"},
		{"auth type", TLSFiles{CertFile: pki.certFile, KeyFile: pki.keyFile, ClientAuth: "Sometimes"}, "Sometimes"},
		{"protocol", TLSFiles{CertFile: pki.certFile, KeyFile: pki.keyFile, Protocols: []string{"TLSv9"}}, "TLSv9"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadTLS(c.f)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("LoadTLS: %v, want an error naming %q", err, c.want)
			}
		})
	}
	t.Run("listener without certificate", func(t *testing.T) {
		srv, err := New(Options{
			Listeners: []Listener{{Protocol: "wss", Addr: "127.0.0.1:0"}},
			Resources: resources.NewHolder(&resources.Set{}), Auth: mustDigest(t),
			Location: location.NewMemory(location.MemoryOptions{}), Calls: calls.NewTracker(calls.Options{}),
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "wss") {
			t.Fatalf("Run: %v, want a refusal naming wss", err)
		}
	})
}

func mustDigest(t *testing.T) *auth.Digest {
	t.Helper()
	d, err := auth.New(auth.Config{Algorithms: []string{"MD5"}})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestLoadTLSKeyStore reads a PKCS#12 key store made by openssl, as Routr
// users have them.
func TestLoadTLSKeyStore(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	pki := newTestPKI(t)
	p12 := filepath.Join(pki.dir, "signaling.p12")
	args := []string{"pkcs12", "-export", "-in", pki.certFile, "-inkey", pki.keyFile, "-certfile", pki.caFile,
		"-out", p12, "-passout", "pass:changeme"}
	out, err := exec.Command("openssl", append(args, "-legacy")...).CombinedOutput()
	if err != nil {
		// OpenSSL 1.1 writes legacy encryption by default and has no -legacy.
		if out, err = exec.Command("openssl", args...).CombinedOutput(); err != nil {
			t.Skipf("openssl pkcs12: %v: %s", err, out)
		}
	}
	c, err := LoadTLS(TLSFiles{KeyStore: p12, KeyStorePassword: "changeme"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Certificates[0].Certificate) != 2 || c.Certificates[0].Leaf.Subject.CommonName != "127.0.0.1" {
		t.Fatalf("key store read as %d certificates, leaf %v", len(c.Certificates[0].Certificate), c.Certificates[0].Leaf.Subject)
	}
	if _, err := LoadTLS(TLSFiles{KeyStore: p12, KeyStorePassword: "wrong"}); err == nil || !strings.Contains(err.Error(), "wrong password") {
		t.Fatalf("wrong password: %v", err)
	}
	// A trust store may be PKCS#12 too.
	c, err = LoadTLS(TLSFiles{CertFile: pki.certFile, KeyFile: pki.keyFile, TrustStore: p12, TrustStorePassword: "changeme", ClientAuth: "Wanted"})
	if err != nil || c.ClientCAs == nil {
		t.Fatalf("PKCS#12 trust store: %v", err)
	}
}
