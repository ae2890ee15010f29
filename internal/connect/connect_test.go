package connect

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestKey returns an RSA key and its public half in PEM.
func testKey(t testing.TB) (*rsa.PrivateKey, []byte) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return k, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func sign(t testing.TB, method jwt.SigningMethod, key any, c Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerify(t *testing.T) {
	key, pub := testKey(t)
	other, _ := testKey(t)
	v, err := NewVerifier(pub, Options{})
	if err != nil {
		t.Fatal(err)
	}
	good := Claims{
		RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))},
		Ref:              "agent-eph", Domain: "sip.local", DomainRef: "domain-01",
		AOR: "sip:eph@sip.local", AORLink: "backend:voice", MaxContacts: 1,
		AllowedMethods: []string{"INVITE", "REGISTER"},
	}
	c, err := v.Verify(sign(t, jwt.SigningMethodRS256, key, good))
	if err != nil {
		t.Fatal(err)
	}
	if c.AORLink != "backend:voice" || !c.Allows("INVITE") || !c.Allows("register") || c.Allows("MESSAGE") {
		t.Fatalf("claims %+v", c)
	}

	expired := good
	expired.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Minute))
	noExpiry := good
	noExpiry.ExpiresAt = nil
	for name, token := range map[string]string{
		"expired":                            sign(t, jwt.SigningMethodRS256, key, expired),
		"without expiry":                     sign(t, jwt.SigningMethodRS256, key, noExpiry),
		"another key":                        sign(t, jwt.SigningMethodRS256, other, good),
		"HMAC with the public key as secret": sign(t, jwt.SigningMethodHS256, pub, good),
		"garbage":                            "a.b.c",
	} {
		if _, err := v.Verify(token); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestOptions(t *testing.T) {
	o, err := ParseOptions(`{"expiresIn": "1h", "algorithm": ["RS256"], "issuer": "fonoster"}`)
	if err != nil || o.Issuer != "fonoster" || len(o.Algorithm) != 1 {
		t.Fatalf("%+v %v", o, err)
	}
	if _, err := ParseOptions(`{`); err == nil {
		t.Fatal("bad JSON accepted")
	}
	key, pub := testKey(t)
	v, err := NewVerifier(pub, o)
	if err != nil {
		t.Fatal(err)
	}
	c := Claims{RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour)), Issuer: "someone"}}
	if _, err := v.Verify(sign(t, jwt.SigningMethodRS256, key, c)); err == nil {
		t.Fatal("a token of another issuer accepted")
	}
	if _, err := NewVerifier([]byte("not a key"), Options{}); err == nil {
		t.Fatal("no key accepted")
	}
}
