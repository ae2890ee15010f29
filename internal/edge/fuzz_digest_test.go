package edge

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/routr-go/routr/internal/auth"
	"github.com/routr-go/routr/internal/calls"
	"github.com/routr-go/routr/internal/location"
	"github.com/routr-go/routr/internal/resources"
)

// digestServer is an edge for the digest fuzz target: the example
// resources (agent 1001, password 1234) and no cap on failed
// authentications, so that the fuzzer keeps reaching verification.
func digestServer(tb testing.TB) *Server {
	tb.Helper()
	set, err := resources.LoadDir("../../config/resources")
	if err != nil {
		tb.Fatal(err)
	}
	dg, err := auth.New(auth.Config{Algorithms: []string{"MD5", "SHA-256"}})
	if err != nil {
		tb.Fatal(err)
	}
	s, err := New(Options{
		Listeners:  []Listener{{Protocol: "udp", Addr: "127.0.0.1:0"}},
		Registrar:  RegistrarOptions{MinExpires: time.Minute, MaxExpires: time.Hour, DefaultExpires: time.Hour},
		Resources:  resources.NewHolder(set),
		Auth:       dg,
		Location:   location.NewMemory(location.MemoryOptions{MaxBindings: 100}),
		Calls:      calls.NewTracker(calls.Options{}),
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registerer: prometheus.NewRegistry(),
		Guard:      GuardOptions{MaxAuthFailures: -1},
	})
	if err != nil {
		tb.Fatal(err)
	}
	// Never Run, but what it forwards opens sockets with readers.
	tb.Cleanup(func() { s.client.Close(); s.ua.Close() })
	return s
}

// digestRequest is a REGISTER of 1001 with an Authorization header, or an
// INVITE from 1001 to 1002 with a Proxy-Authorization header, carrying
// value.
func digestRequest(method, value string) string {
	hdr, uri := "Authorization", "sip:sip.local"
	if method == "INVITE" {
		hdr, uri = "Proxy-Authorization", "sip:1002@sip.local"
	}
	to := "<sip:1001@sip.local>"
	if method == "INVITE" {
		to = "<sip:1002@sip.local>"
	}
	return fmt.Sprintf("%s %s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKfz\r\nFrom: <sip:1001@sip.local>;tag=f\r\nTo: %s\r\nCall-ID: fuzz-digest\r\nCSeq: 2 %s\r\nMax-Forwards: 70\r\nContact: <sip:1001@127.0.0.1:5070>\r\n%s: %s\r\nContent-Length: 0\r\n\r\n",
		method, uri, to, method, hdr, value)
}

// digestResponse computes the answer a client with password gives to the
// parameters of c (RFC 7616), independently of internal/auth.
func digestResponse(c auth.Credentials, method, password string) string {
	alg := strings.ToUpper(c.Algorithm)
	h := func(s string) string {
		if strings.HasPrefix(alg, "SHA-256") {
			sum := sha256.Sum256([]byte(s))
			return hex.EncodeToString(sum[:])
		}
		sum := md5.Sum([]byte(s))
		return hex.EncodeToString(sum[:])
	}
	ha1 := h(c.Username + ":" + c.Realm + ":" + password)
	if strings.HasSuffix(alg, "-SESS") {
		ha1 = h(ha1 + ":" + c.Nonce + ":" + c.CNonce)
	}
	ha2 := h(method + ":" + c.URI)
	if c.QOP == "" {
		return h(ha1 + ":" + c.Nonce + ":" + ha2)
	}
	return h(ha1 + ":" + c.Nonce + ":" + c.NC + ":" + c.CNonce + ":" + c.QOP + ":" + ha2)
}

// FuzzDigestHeaders sends REGISTERs and INVITEs whose Authorization or
// Proxy-Authorization value is arbitrary through the whole handler chain
// (registrar and proxy authentication). Nothing may panic, each gets at
// most one final response, and a request gets past authentication only
// with the right answer for 1001's password.
func FuzzDigestHeaders(f *testing.F) {
	s := digestServer(f)
	// Seeds: what a real client (icholy/digest, which sipgo's clients
	// use) answers to the edge's own challenges, with and without qop.
	for _, ch := range s.opts.Auth.Challenge("sip.local", false) {
		for _, tc := range []struct{ method, uri string }{{"REGISTER", "sip:sip.local"}, {"INVITE", "sip:1002@sip.local"}} {
			for _, noQOP := range []bool{false, true} {
				chal, err := digest.ParseChallenge(ch)
				if err != nil {
					f.Fatal(err)
				}
				chal.Algorithm = strings.ToUpper(chal.Algorithm)
				if noQOP {
					chal.QOP = nil
				}
				cred, err := digest.Digest(chal, digest.Options{Method: tc.method, URI: tc.uri, Username: "1001", Password: "1234"})
				if err != nil {
					f.Fatal(err)
				}
				f.Add(tc.method, cred.String())
			}
		}
	}
	// sipp's MD5 answer, as captured from sip-tester 3.6.
	f.Add("REGISTER", `Digest username="1001",realm="sip.local",uri="sip:sip.local",nonce="AAAA",response="8a2b3c4d5e6f708192a3b4c5d6e7f809",algorithm=MD5`)
	f.Add("INVITE", `Digest username="1001", realm="sip.local", nonce="", uri="sip:1002@sip.local", response="", qop=auth, nc=00000001, cnonce="x"`)
	f.Add("REGISTER", `Basic dXNlcjpwYXNz`)
	f.Add("REGISTER", `Digest username="1001\`)
	f.Fuzz(func(t *testing.T, method, value string) {
		if method != "REGISTER" {
			method = "INVITE"
		}
		msg, err := sip.ParseMessage([]byte(digestRequest(method, value)))
		if err != nil {
			return
		}
		req, ok := msg.(*sip.Request)
		if !ok {
			return
		}
		req.SetSource("127.0.0.1:5070")
		req.SetTransport("UDP")
		tx := newFakeTx()
		defer tx.Terminate()
		s.serve(req, tx)
		tx.mu.Lock()
		defer tx.mu.Unlock()
		var finals []int
		for _, r := range tx.res {
			if r.StatusCode >= 200 {
				finals = append(finals, r.StatusCode)
			}
		}
		if len(finals) > 1 {
			t.Fatalf("%d final responses: %v", len(finals), finals)
		}
		passed := false
		switch {
		case method == "REGISTER":
			passed = len(finals) == 1 && finals[0] == 200
		case len(finals) == 1:
			passed = finals[0] != 407 && finals[0] != 403 && finals[0] != 400
		}
		if !passed {
			return
		}
		// Past authentication: the header must be the right answer.
		var h sip.Header
		if method == "REGISTER" {
			h = req.GetHeader("Authorization")
		} else {
			h = req.GetHeader("Proxy-Authorization")
		}
		if h == nil {
			t.Fatalf("%s passed authentication (%v) without credentials", method, finals)
		}
		c, err := auth.ParseCredentials(h.Value())
		if err != nil {
			t.Fatalf("%s passed authentication (%v) with unparsable credentials %q", method, finals, h.Value())
		}
		if c.Username != "1001" || c.Realm != "sip.local" || !strings.EqualFold(c.Response, digestResponse(c, method, "1234")) {
			t.Fatalf("%s passed authentication (%v) with a wrong answer %q", method, finals, h.Value())
		}
	})
}
