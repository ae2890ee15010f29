package auth

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/icholy/digest"
)

// Mufasa is the example of RFC 7616 section 3.9.1.
var mufasa = Credentials{
	Username: "Mufasa",
	Realm:    "http-auth@example.org",
	Nonce:    "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
	URI:      "/dir/index.html",
	CNonce:   "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
	NC:       "00000001",
	QOP:      "auth",
}

func TestRFC7616Vectors(t *testing.T) {
	tests := []struct {
		alg  algorithm
		want string
	}{
		{algMD5, "8ca523f5e9506fed4657c9700eebdbec"},
		{algSHA256, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"},
	}
	for _, tt := range tests {
		t.Run(tt.alg.String(), func(t *testing.T) {
			var out [32]byte
			n, ok := tt.alg.response(out[:0], &mufasa, "GET", "Circle of Life", false, true)
			if got := hex.EncodeToString(out[:n]); !ok || got != tt.want {
				t.Errorf("response = %s, %v; want %s", got, ok, tt.want)
			}
			// The same through a stored HA1, in upper case as some stores keep it.
			ha1 := strings.ToUpper(HA1(tt.alg.String(), mufasa.Username, mufasa.Realm, "Circle of Life"))
			n, ok = tt.alg.response(out[:0], &mufasa, "GET", ha1, true, true)
			if got := hex.EncodeToString(out[:n]); !ok || got != tt.want {
				t.Errorf("response from HA1 = %s, %v; want %s", got, ok, tt.want)
			}
		})
	}
}

// refResponse is a deliberately plain reimplementation of RFC 7616 3.4.1
// used as an oracle.
func refResponse(alg string, c Credentials, method, password string) string {
	h := func(s string) string {
		if strings.HasPrefix(strings.ToUpper(alg), "SHA-256") {
			sum := sha256.Sum256([]byte(s))
			return hex.EncodeToString(sum[:])
		}
		sum := md5.Sum([]byte(s))
		return hex.EncodeToString(sum[:])
	}
	ha1 := h(c.Username + ":" + c.Realm + ":" + password)
	if strings.HasSuffix(strings.ToLower(alg), "-sess") {
		ha1 = h(ha1 + ":" + c.Nonce + ":" + c.CNonce)
	}
	ha2 := h(method + ":" + c.URI)
	if c.QOP == "" {
		return h(ha1 + ":" + c.Nonce + ":" + ha2)
	}
	return h(ha1 + ":" + c.Nonce + ":" + c.NC + ":" + c.CNonce + ":" + c.QOP + ":" + ha2)
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newDigest(t testing.TB, cfg Config) *Digest {
	t.Helper()
	if cfg.Algorithms == nil {
		cfg.Algorithms = []string{"MD5", "SHA-256"}
	}
	if cfg.Secret == nil {
		cfg.Secret = []byte("shared secret of the edge fleet")
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// answer plays a sipgo client: it parses a challenge and answers it with
// icholy/digest exactly as sipgo's digestAuthApply does.
func answer(t testing.TB, challenge, method, uri, user, password string, noQOP bool) string {
	t.Helper()
	chal, err := digest.ParseChallenge(challenge)
	if err != nil {
		t.Fatalf("client cannot parse %q: %v", challenge, err)
	}
	chal.Algorithm = strings.ToUpper(chal.Algorithm) // as sipgo does
	if noQOP {
		chal.QOP = nil
	}
	cred, err := digest.Digest(chal, digest.Options{Method: method, URI: uri, Username: user, Password: password})
	if err != nil {
		t.Fatalf("client cannot answer %q: %v", challenge, err)
	}
	return cred.String()
}

func mustParse(t testing.TB, v string) Credentials {
	t.Helper()
	c, err := ParseCredentials(v)
	if err != nil {
		t.Fatalf("ParseCredentials(%q): %v", v, err)
	}
	return c
}

func TestClientAnswersVerify(t *testing.T) {
	const realm, user, pass = "sip.local", "1001", "s3cret!"
	for _, algs := range [][]string{{"MD5"}, {"SHA-256"}, {"SHA-256", "MD5"}} {
		d := newDigest(t, Config{Algorithms: algs})
		chals := d.Challenge(realm, false)
		if len(chals) != len(algs) {
			t.Fatalf("%v: %d challenges", algs, len(chals))
		}
		for i, ch := range chals {
			name := fmt.Sprintf("%s/%s", strings.Join(algs, ","), algs[i])
			t.Run(name, func(t *testing.T) {
				h := answer(t, ch, "REGISTER", "sip:sip.local", user, pass, false)
				c := mustParse(t, h)
				if got := d.Verify(c, "REGISTER", realm, pass); got != OK {
					t.Errorf("Verify(%s) = %v, want ok", h, got)
				}
				if got := d.Verify(c, "REGISTER", realm, "wrong"); got != Invalid {
					t.Errorf("wrong password: %v, want invalid", got)
				}
				if got := d.Verify(c, "INVITE", realm, pass); got != Invalid {
					t.Errorf("other method: %v, want invalid", got)
				}
				if got := d.VerifyHA1(c, "REGISTER", realm, HA1(algs[i], user, realm, pass)); got != OK {
					t.Errorf("VerifyHA1 = %v, want ok", got)
				}
				// RFC 2069 style (no qop) is for MD5 only.
				h = answer(t, ch, "REGISTER", "sip:sip.local", user, pass, true)
				want := Invalid
				if algs[i] == "MD5" {
					want = OK
				}
				if got := d.Verify(mustParse(t, h), "REGISTER", realm, pass); got != want {
					t.Errorf("no qop: %v, want %v", got, want)
				}
			})
		}
	}
}

// TestSessAlgorithms checks MD5-sess and SHA-256-sess against the oracle,
// since icholy/digest does not implement them.
func TestSessAlgorithms(t *testing.T) {
	for _, alg := range []string{"MD5-sess", "SHA-256-sess"} {
		t.Run(alg, func(t *testing.T) {
			d := newDigest(t, Config{Algorithms: []string{alg}})
			ch, err := digest.ParseChallenge(d.Challenge("sip.local", false)[0])
			if err != nil {
				t.Fatal(err)
			}
			if ch.Algorithm != alg {
				t.Fatalf("algorithm = %q", ch.Algorithm)
			}
			c := Credentials{Username: "bob", Realm: ch.Realm, Nonce: ch.Nonce, URI: "sip:alice@sip.local",
				Algorithm: alg, CNonce: "0a4f113b", NC: "00000001", QOP: "auth", Opaque: ch.Opaque}
			c.Response = refResponse(alg, c, "INVITE", "pw")
			if got := d.Verify(c, "INVITE", "sip.local", "pw"); got != OK {
				t.Errorf("Verify = %v, want ok", got)
			}
			c.QOP, c.NC, c.CNonce = "", "", ""
			c.Response = refResponse(alg, c, "INVITE", "pw")
			if got := d.Verify(c, "INVITE", "sip.local", "pw"); got != Invalid {
				t.Errorf("-sess without qop = %v, want invalid", got)
			}
		})
	}
}

func TestVerifyRefusals(t *testing.T) {
	const realm, pass = "sip.local", "pw"
	clk := &clock{t: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	d := newDigest(t, Config{Now: clk.now, NonceTTL: time.Minute})
	good := mustParse(t, answer(t, d.Challenge(realm, false)[0], "REGISTER", "sip:sip.local", "1001", pass, false))

	otherRealm := func() Credentials {
		// A client that answers a challenge for another realm, replayed here.
		h := answer(t, d.Challenge("other.local", false)[0], "REGISTER", "sip:sip.local", "1001", pass, false)
		h = strings.Replace(h, `realm="other.local"`, `realm="sip.local"`, 1)
		c := mustParse(t, h)
		c.Response = refResponse("MD5", c, "REGISTER", pass)
		return c
	}()
	otherSecret := func() Credentials {
		o := newDigest(t, Config{Now: clk.now, Secret: []byte("another fleet")})
		return mustParse(t, answer(t, o.Challenge(realm, false)[0], "REGISTER", "sip:sip.local", "1001", pass, false))
	}()
	with := func(f func(c *Credentials)) Credentials {
		c := good
		f(&c)
		if c.Response == good.Response {
			c.Response = refResponse(c.Algorithm, c, "REGISTER", pass)
		}
		return c
	}
	// tamper changes a field the client signed, keeping its response.
	tamper := func(f func(c *Credentials)) Credentials {
		c := good
		f(&c)
		return c
	}
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}

	tests := []struct {
		name string
		c    Credentials
		pass string
		want Result
	}{
		{"good", good, pass, OK},
		{"wrong password", good, "PW", Invalid},
		{"empty password", good, "", Invalid},
		{"tampered nonce timestamp", with(func(c *Credentials) { c.Nonce = flip(c.Nonce, 3) }), pass, Invalid},
		{"tampered nonce mac", with(func(c *Credentials) { c.Nonce = flip(c.Nonce, 30) }), pass, Invalid},
		{"truncated nonce", with(func(c *Credentials) { c.Nonce = c.Nonce[:37] }), pass, Invalid},
		{"foreign nonce", with(func(c *Credentials) { c.Nonce = mufasa.Nonce }), pass, Invalid},
		{"nonce of another realm", otherRealm, pass, Invalid},
		{"nonce of another secret", otherSecret, pass, Invalid},
		{"realm mismatch", with(func(c *Credentials) { c.Realm = "SIP.LOCAL" }), pass, Invalid},
		{"algorithm not offered", with(func(c *Credentials) { c.Algorithm = "SHA-256-sess" }), pass, Invalid},
		{"unknown algorithm", with(func(c *Credentials) { c.Algorithm = "SHA-512" }), pass, Invalid},
		{"algorithm in lower case", with(func(c *Credentials) { c.Algorithm = "md5" }), pass, OK},
		{"no algorithm means MD5", with(func(c *Credentials) { c.Algorithm = "" }), pass, OK},
		{"opaque changed", with(func(c *Credentials) { c.Opaque = "x" + c.Opaque }), pass, Invalid},
		{"opaque omitted", with(func(c *Credentials) { c.Opaque = "" }), pass, OK},
		{"qop auth-int", with(func(c *Credentials) { c.QOP = "auth-int" }), pass, Invalid},
		{"qop in upper case", with(func(c *Credentials) { c.QOP = "AUTH" }), pass, OK},
		{"nc too short", with(func(c *Credentials) { c.NC = "1" }), pass, Invalid},
		{"nc not hex", with(func(c *Credentials) { c.NC = "0000000g" }), pass, Invalid},
		{"qop without cnonce", with(func(c *Credentials) { c.CNonce = "" }), pass, Invalid},
		{"response upper case", with(func(c *Credentials) { c.Response = strings.ToUpper(good.Response) }), pass, OK},
		{"response truncated", with(func(c *Credentials) { c.Response = good.Response[:31] }), pass, Invalid},
		{"response of SHA-256 length", with(func(c *Credentials) { c.Response = good.Response + good.Response }), pass, Invalid},
		{"response not hex", with(func(c *Credentials) { c.Response = "zz" + good.Response[2:] }), pass, Invalid},
		{"other uri", tamper(func(c *Credentials) { c.URI = "sip:evil" }), pass, Invalid},
		{"other user", tamper(func(c *Credentials) { c.Username = "1002" }), pass, Invalid},
		{"other cnonce", tamper(func(c *Credentials) { c.CNonce += "x" }), pass, Invalid},
		{"other nc", tamper(func(c *Credentials) { c.NC = "00000002" }), pass, Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := d.Verify(tt.c, "REGISTER", realm, tt.pass); got != tt.want {
				t.Errorf("Verify = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNonceExpiry(t *testing.T) {
	const realm, pass = "sip.local", "pw"
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	clk := &clock{t: t0}
	d := newDigest(t, Config{Now: clk.now, NonceTTL: 30 * time.Second})
	c := mustParse(t, answer(t, d.Challenge(realm, false)[0], "REGISTER", "sip:sip.local", "1001", pass, false))

	tests := []struct {
		at   time.Duration
		pass string
		want Result
	}{
		{0, pass, OK},
		{30 * time.Second, pass, OK},
		{30*time.Second + 1, pass, Stale},
		{time.Hour, pass, Stale},
		{time.Hour, "wrong", Invalid}, // stale only with the right password
		{-30 * time.Second, pass, OK}, // another instance's clock is behind
		{-31 * time.Second, pass, Stale},
	}
	for _, tt := range tests {
		clk.t = t0.Add(tt.at)
		if got := d.Verify(c, "REGISTER", realm, tt.pass); got != tt.want {
			t.Errorf("at %v with %q: %v, want %v", tt.at, tt.pass, got, tt.want)
		}
	}
}

// TestScaleOut checks that instances sharing a secret accept each other's
// nonces, whatever the order of their configured algorithms.
func TestScaleOut(t *testing.T) {
	a := newDigest(t, Config{Algorithms: []string{"MD5", "SHA-256"}})
	b := newDigest(t, Config{Algorithms: []string{"SHA-256", "MD5"}})
	for _, ch := range a.Challenge("sip.local", false) {
		c := mustParse(t, answer(t, ch, "INVITE", "sip:2000@sip.local", "1001", "pw", false))
		if got := b.Verify(c, "INVITE", "sip.local", "pw"); got != OK {
			t.Errorf("%s answered to a, verified by b: %v", c.Algorithm, got)
		}
	}
	random := newDigest(t, Config{Secret: []byte{}})
	c := mustParse(t, answer(t, random.Challenge("sip.local", false)[0], "INVITE", "sip:x", "u", "pw", false))
	if got := a.Verify(c, "INVITE", "sip.local", "pw"); got != Invalid {
		t.Errorf("nonce of a random-secret instance accepted elsewhere: %v", got)
	}
	if got := random.Verify(c, "INVITE", "sip.local", "pw"); got != OK {
		t.Errorf("random-secret instance refuses its own nonce: %v", got)
	}
}

var challengeRE = regexp.MustCompile(`^Digest realm="sip\.local", nonce="[A-Za-z0-9_-]{38}", opaque="[A-Za-z0-9_-]{16}", algorithm=(MD5|SHA-256), qop="auth"(, stale=true)?$`)

func TestChallengeFormat(t *testing.T) {
	d := newDigest(t, Config{Algorithms: []string{"SHA-256", "MD5"}})
	for _, stale := range []bool{false, true} {
		got := d.Challenge("sip.local", stale)
		if len(got) != 2 {
			t.Fatalf("got %d values", len(got))
		}
		for i, alg := range []string{"SHA-256", "MD5"} {
			m := challengeRE.FindStringSubmatch(got[i])
			if m == nil || m[1] != alg || (m[2] != "") != stale {
				t.Errorf("challenge %d (stale=%v) = %q", i, stale, got[i])
			}
		}
		// One nonce per challenge, shared by its algorithms.
		n0, n1 := got[0][strings.Index(got[0], "nonce="):][:46], got[1][strings.Index(got[1], "nonce="):][:46]
		if n0 != n1 {
			t.Errorf("nonces differ: %s %s", n0, n1)
		}
	}
	a, b := d.Challenge("sip.local", false)[0], d.Challenge("sip.local", false)[0]
	if a == b {
		t.Errorf("two challenges share a nonce: %s", a)
	}
	ch, err := digest.ParseChallenge(d.Challenge("sip.local", true)[0])
	if err != nil || !ch.Stale || ch.Realm != "sip.local" || ch.Algorithm != "SHA-256" || !ch.SupportsQOP("auth") {
		t.Errorf("client reads %+v, %v", ch, err)
	}
}

func TestChallengeEscapesRealm(t *testing.T) {
	const realm = `we "quote" \ things`
	d := newDigest(t, Config{})
	v := d.Challenge(realm, false)[0]
	if !strings.HasPrefix(v, `Digest realm="we \"quote\" \\ things", `) {
		t.Fatalf("challenge = %s", v)
	}
	h := answer(t, v, "REGISTER", "sip:x", "u", "pw", false)
	if got := d.Verify(mustParse(t, h), "REGISTER", realm, "pw"); got != OK {
		t.Errorf("Verify = %v (%s)", got, h)
	}
}

func TestChallengeDropsControlCharacters(t *testing.T) {
	d := newDigest(t, Config{})
	v := d.Challenge("evil\r\nX-Injected: 1", false)[0]
	if !strings.HasPrefix(v, `Digest realm="evilX-Injected: 1", `) {
		t.Errorf("challenge = %q", v)
	}
}

func TestReplayCache(t *testing.T) {
	const realm, pass = "sip.local", "pw"
	d := newDigest(t, Config{ReplayCacheSize: 2})
	ch := d.Challenge(realm, false)[0]
	chal, _ := digest.ParseChallenge(ch)
	creds := func(nc int) Credentials {
		cr, err := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: "sip:x", Username: "u", Password: pass, Count: nc, Cnonce: "fixed"})
		if err != nil {
			t.Fatal(err)
		}
		return mustParse(t, cr.String())
	}
	steps := []struct {
		nc   int
		want Result
	}{
		{1, OK},
		{1, Stale}, // exact replay
		{2, OK},    // the same nonce reused properly
		{3, OK},    // evicts nc=1 from a ring of 2
		{1, OK},    // forgotten: the ring is bounded
		{3, Stale},
	}
	for i, s := range steps {
		if got := d.Verify(creds(s.nc), "REGISTER", realm, pass); got != s.want {
			t.Errorf("step %d (nc=%d): %v, want %v", i, s.nc, got, s.want)
		}
	}
	// A wrong password is invalid, never stale, and is not remembered.
	if got := d.Verify(creds(3), "REGISTER", realm, "bad"); got != Invalid {
		t.Errorf("replay with wrong password: %v", got)
	}
	if st := d.Stats(); st.Replays != 2 || st.ReplayCacheEntries != 2 {
		t.Errorf("Stats = %+v", st)
	}
	if st := newDigest(t, Config{}).Stats(); st != (Stats{}) {
		t.Errorf("Stats without cache = %+v", st)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		cfg     Config
		wantErr string
	}{
		{Config{Algorithms: []string{"MD5"}}, ""},
		{Config{Algorithms: []string{"md5", "sha-256", "MD5-SESS", "sha-256-sess"}}, ""},
		{Config{}, "auth: no digest algorithm configured"},
		{Config{Algorithms: []string{}}, "auth: no digest algorithm configured"},
		{Config{Algorithms: []string{"SHA-512"}}, `auth: unknown digest algorithm "SHA-512" (want MD5, MD5-sess, SHA-256 or SHA-256-sess)`},
		{Config{Algorithms: []string{"MD5", "md5"}}, `auth: digest algorithm "md5" listed twice`},
		{Config{Algorithms: []string{"MD5"}, NonceTTL: -time.Second}, "auth: negative nonce TTL -1s"},
		{Config{Algorithms: []string{"MD5"}, ReplayCacheSize: -1}, "auth: negative replay cache size -1"},
	}
	for _, tt := range tests {
		_, err := New(tt.cfg)
		if got := fmt.Sprint(err); (tt.wantErr == "" && err != nil) || (tt.wantErr != "" && got != tt.wantErr) {
			t.Errorf("New(%+v) = %v, want %q", tt.cfg, err, tt.wantErr)
		}
	}
}

func TestHA1(t *testing.T) {
	want := md5.Sum([]byte("Mufasa:http-auth@example.org:Circle of Life"))
	if got := HA1("MD5", "Mufasa", "http-auth@example.org", "Circle of Life"); got != hex.EncodeToString(want[:]) {
		t.Errorf("HA1 MD5 = %s", got)
	}
	if HA1("MD5-sess", "a", "b", "c") != HA1("md5", "a", "b", "c") {
		t.Error("MD5-sess HA1 differs from MD5's")
	}
	want2 := sha256.Sum256([]byte("a:b:c"))
	if got := HA1("SHA-256", "a", "b", "c"); got != hex.EncodeToString(want2[:]) {
		t.Errorf("HA1 SHA-256 = %s", got)
	}
	if got := HA1("SHA-512", "a", "b", "c"); got != "" {
		t.Errorf("HA1 unknown = %q", got)
	}
	d := newDigest(t, Config{})
	c := mustParse(t, answer(t, d.Challenge("r", false)[0], "REGISTER", "sip:x", "a", "c", false))
	if got := d.VerifyHA1(c, "REGISTER", "r", HA1("SHA-256", "a", "r", "c")); got != Invalid {
		t.Errorf("VerifyHA1 with an HA1 of another algorithm = %v", got)
	}
}

func TestResultString(t *testing.T) {
	for r, want := range map[Result]string{OK: "ok", Stale: "stale", Invalid: "invalid", Result(9): "invalid"} {
		if r.String() != want {
			t.Errorf("%d.String() = %q", r, r.String())
		}
	}
}
