package auth

import (
	"strings"
	"testing"
)

func BenchmarkChallenge(b *testing.B) {
	d := newDigest(b, Config{Algorithms: []string{"SHA-256", "MD5"}})
	b.ReportAllocs()
	for b.Loop() {
		d.Challenge("sip.local", false)
	}
}

func BenchmarkParseCredentials(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseCredentials(sipgoHeader); err != nil {
			b.Fatal(err)
		}
	}
}

func benchmarkVerify(b *testing.B, alg string, cfg Config) {
	cfg.Algorithms = []string{alg}
	fresh := cfg.ReplayCacheSize != 0
	cfg.ReplayCacheSize = max(cfg.ReplayCacheSize, 0)
	d := newDigest(b, cfg)
	c := mustParse(b, answer(b, d.Challenge("sip.local", false)[0], "REGISTER", "sip:sip.local", "1001", "pw", false))
	b.ReportAllocs()
	for b.Loop() {
		if fresh {
			ch := d.Challenge("sip.local", false)[0] // a fresh tuple every time
			c.Nonce = ch[strings.Index(ch, `nonce="`)+7:][:nonceLen]
			c.Response = refResponse("MD5", c, "REGISTER", "pw")
		}
		if r := d.Verify(c, "REGISTER", "sip.local", "pw"); r != OK {
			b.Fatal(r)
		}
	}
}

func BenchmarkVerifyMD5(b *testing.B)    { benchmarkVerify(b, "MD5", Config{}) }
func BenchmarkVerifySHA256(b *testing.B) { benchmarkVerify(b, "SHA-256", Config{}) }

// BenchmarkVerifyMD5ReplayCache makes every tuple new with a Challenge and
// a reference response per iteration: compare it with
// BenchmarkVerifyMD5ReplayCacheBaseline, which does the same without a cache.
func BenchmarkVerifyMD5ReplayCache(b *testing.B) {
	benchmarkVerify(b, "MD5", Config{ReplayCacheSize: 1 << 16})
}

func BenchmarkVerifyMD5ReplayCacheBaseline(b *testing.B) {
	benchmarkVerify(b, "MD5", Config{ReplayCacheSize: -1})
}
