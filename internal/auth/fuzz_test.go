package auth

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func FuzzParseCredentials(f *testing.F) {
	f.Add(sipgoHeader)
	f.Add(`Digest username="a\"b", realm=r, nonce="n", uri="sip:x", response="r", qop=auth, cnonce="c", nc=00000001`)
	f.Add(`digest ,, USERNAME = "" , realm="", nonce="", uri="", response=""`)
	f.Add("Digest username=\"\\")
	f.Add(`Digest username="1001" realm=`)
	f.Fuzz(func(t *testing.T, in string) {
		c, err := ParseCredentials(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		// What parses must survive a round trip through a canonical form.
		out := format(c)
		c2, err := ParseCredentials(out)
		if err != nil {
			t.Fatalf("reparse of %q (from %q): %v", out, in, err)
		}
		if c2 != c {
			t.Fatalf("round trip of %q:\n got %+v\nwant %+v", in, c2, c)
		}
	})
}

// FuzzVerify feeds mutated answers to real challenges: Verify must never
// panic, and must say OK only when the plain reference implementation
// agrees that the response is right.
func FuzzVerify(f *testing.F) {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	seedDigest := newDigest(f, Config{Now: func() time.Time { return t0 }, Algorithms: []string{"MD5", "SHA-256", "MD5-sess", "SHA-256-sess"}})
	for _, ch := range seedDigest.Challenge("sip.local", false) {
		if strings.Contains(ch, "-sess") {
			continue // icholy/digest cannot answer these
		}
		f.Add(answer(f, ch, "REGISTER", "sip:sip.local", "1001", "pw", false), "REGISTER", "pw")
		f.Add(answer(f, ch, "INVITE", "sip:2000@sip.local", "1001", "pw", true), "INVITE", "pw")
	}
	f.Add(sipgoHeader, "REGISTER", "")
	f.Fuzz(func(t *testing.T, header, method, password string) {
		// A fresh Digest with the same secret and clock accepts the seeds'
		// nonces; its counter state does not matter to Verify.
		d := newDigest(t, Config{Now: func() time.Time { return t0 }, Algorithms: []string{"MD5", "SHA-256", "MD5-sess", "SHA-256-sess"}})
		c, err := ParseCredentials(header)
		if err != nil {
			return
		}
		r := d.Verify(c, method, "sip.local", password)
		if r == OK {
			alg := c.Algorithm
			if alg == "" {
				alg = "MD5"
			}
			if want := refResponse(alg, c, method, password); !strings.EqualFold(want, c.Response) {
				t.Fatalf("Verify OK but reference response %s != %s for %+v", want, c.Response, c)
			}
		}
		if r != OK && r != Stale && r != Invalid {
			t.Fatalf("Verify = %d", r)
		}
		d.VerifyHA1(c, method, "sip.local", password)
	})
}
