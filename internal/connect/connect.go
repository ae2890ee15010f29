// Package connect verifies X-Connect-Token headers: JSON Web Tokens that
// let ephemeral agents register and call without digest credentials, with
// the claims Routr's connect processor reads.
package connect

import (
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// Header is the header that carries the token.
const Header = "X-Connect-Token"

// Claims are what a token grants, as Routr's VerifyResponse names them.
type Claims struct {
	jwt.RegisteredClaims
	// Ref names the ephemeral agent.
	Ref string `json:"ref"`
	// Domain is the domain URI the agent belongs to; DomainRef its ref.
	Domain    string `json:"domain"`
	DomainRef string `json:"domainRef"`
	// AOR is the address of record a REGISTER stores bindings under.
	AOR string `json:"aor"`
	// AORLink is the address of record calls go to: a peer's aor.
	AORLink  string `json:"aorLink"`
	Username string `json:"username"`
	// MaxContacts bounds the bindings under AOR; 0 or less means none.
	MaxContacts int `json:"maxContacts"`
	// AllowedMethods are the SIP methods the token may be used for.
	AllowedMethods []string `json:"allowedMethods"`
}

// Allows reports whether the token may be used for method.
func (c *Claims) Allows(method string) bool {
	return slices.ContainsFunc(c.AllowedMethods, func(m string) bool { return strings.EqualFold(m, method) })
}

// Options are the verification options, read from
// CONNECT_VERIFIER_OPTIONS as Routr reads them for jsonwebtoken's verify:
// "algorithms" (or Routr's default's "algorithm"), "issuer", "audience".
// Other keys ("expiresIn" is a signing option) are ignored.
type Options struct {
	Algorithms []string `json:"algorithms"`
	Algorithm  []string `json:"algorithm"`
	Issuer     string   `json:"issuer"`
	Audience   string   `json:"audience"`
}

// ParseOptions reads CONNECT_VERIFIER_OPTIONS; empty means Routr's
// default, RS256.
func ParseOptions(s string) (Options, error) {
	var o Options
	if strings.TrimSpace(s) == "" {
		return o, nil
	}
	if err := json.Unmarshal([]byte(s), &o); err != nil {
		return o, fmt.Errorf("connect verifier options: %w", err)
	}
	return o, nil
}

// Verifier checks tokens against one public key.
type Verifier struct {
	key    crypto.PublicKey
	parser *jwt.Parser
}

// NewVerifier returns a Verifier for tokens signed by the private half of
// the PEM public key (RSA, ECDSA or Ed25519).
func NewVerifier(pemKey []byte, o Options) (*Verifier, error) {
	key, err := parseKey(pemKey)
	if err != nil {
		return nil, err
	}
	algs := o.Algorithms
	if len(algs) == 0 {
		algs = o.Algorithm
	}
	if len(algs) == 0 {
		algs = []string{"RS256"}
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(algs), jwt.WithExpirationRequired()}
	if o.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(o.Issuer))
	}
	if o.Audience != "" {
		opts = append(opts, jwt.WithAudience(o.Audience))
	}
	return &Verifier{key: key, parser: jwt.NewParser(opts...)}, nil
}

func parseKey(pemKey []byte) (crypto.PublicKey, error) {
	if k, err := jwt.ParseRSAPublicKeyFromPEM(pemKey); err == nil {
		return k, nil
	}
	if k, err := jwt.ParseECPublicKeyFromPEM(pemKey); err == nil {
		return k, nil
	}
	if k, err := jwt.ParseEdPublicKeyFromPEM(pemKey); err == nil {
		return k, nil
	}
	return nil, errors.New("connect verifier: no RSA, ECDSA or Ed25519 public key in PEM")
}

// Verify checks token's signature, algorithm and times and returns its
// claims.
func (v *Verifier) Verify(token string) (*Claims, error) {
	var c Claims
	if _, err := v.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return v.key, nil }); err != nil {
		return nil, err
	}
	return &c, nil
}
