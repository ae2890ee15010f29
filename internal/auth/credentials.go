package auth

import (
	"errors"
	"fmt"
	"strings"
)

// ErrMalformed is wrapped by every error of [ParseCredentials].
var ErrMalformed = errors.New("auth: malformed credentials")

// Credentials are the parameters of an Authorization or Proxy-Authorization
// header value. Values are unquoted and unescaped; unknown parameters are
// ignored.
type Credentials struct {
	Username, Realm, Nonce, URI, Response, Algorithm, CNonce, NC, QOP, Opaque string
}

// paramNames indexes the Credentials fields ParseCredentials fills.
var paramNames = [...]string{"username", "realm", "nonce", "uri", "response", "algorithm", "cnonce", "nc", "qop", "opaque"}

func (c *Credentials) field(i int) *string {
	switch i {
	case 0:
		return &c.Username
	case 1:
		return &c.Realm
	case 2:
		return &c.Nonce
	case 3:
		return &c.URI
	case 4:
		return &c.Response
	case 5:
		return &c.Algorithm
	case 6:
		return &c.CNonce
	case 7:
		return &c.NC
	case 8:
		return &c.QOP
	default:
		return &c.Opaque
	}
}

// ParseCredentials parses a Digest Authorization/Proxy-Authorization header
// value. It accepts the scheme and parameter names in any case, parameters
// in any order with any spacing, quoted strings with backslash escapes, and
// unquoted values (even those that RFC 7616 wants quoted, as some phones
// send uri unquoted). It refuses control characters, duplicated known
// parameters, and credentials missing username, realm, nonce, uri or
// response, or, with qop, cnonce or nc. Errors wrap [ErrMalformed] and name
// the parameter or byte offset at fault.
//
// The returned strings point into value, except unescaped ones; so the call
// allocates only when a quoted string holds an escape, and on error.
func ParseCredentials(value string) (Credentials, error) {
	var c Credentials
	s := skipSpace(value)
	if len(s) < len("Digest") || !strings.EqualFold(s[:len("Digest")], "Digest") {
		return c, fmt.Errorf("%w: scheme is not Digest", ErrMalformed)
	}
	s = s[len("Digest"):]
	if s != "" && !isSpace(s[0]) {
		return c, fmt.Errorf("%w: scheme is not Digest", ErrMalformed)
	}
	var seen uint16
	first := true
	for {
		s = skipSpace(s)
		if !first {
			if s == "" {
				break
			}
			if s[0] != ',' {
				return c, fmt.Errorf("%w: expected ',' at offset %d", ErrMalformed, len(value)-len(s))
			}
		}
		// Empty list elements ("a=1, , b=2", a leading or trailing comma)
		// are allowed by the #rule of RFC 7230 section 7.
		for s != "" && s[0] == ',' {
			s = skipSpace(s[1:])
		}
		if s == "" {
			break
		}
		first = false

		name, rest := cutToken(s)
		if name == "" {
			return c, fmt.Errorf("%w: expected parameter name at offset %d", ErrMalformed, len(value)-len(s))
		}
		s = skipSpace(rest)
		if s == "" || s[0] != '=' {
			return c, fmt.Errorf("%w: expected '=' after %q", ErrMalformed, name)
		}
		s = skipSpace(s[1:])
		var v string
		var err error
		if s != "" && s[0] == '"' {
			v, s, err = cutQuoted(s)
			if err != nil {
				return c, fmt.Errorf("%w: %s in value of %q", ErrMalformed, err, name)
			}
		} else {
			v, s = cutBare(s)
			if v == "" {
				return c, fmt.Errorf("%w: empty value for %q", ErrMalformed, name)
			}
		}
		for i, pn := range paramNames {
			if len(pn) == len(name) && strings.EqualFold(pn, name) {
				if seen&(1<<i) != 0 {
					return c, fmt.Errorf("%w: duplicate parameter %q", ErrMalformed, pn)
				}
				seen |= 1 << i
				*c.field(i) = v
				break
			}
		}
	}
	// Required by RFC 7616 section 3.4; cnonce and nc only with qop.
	required := 5
	if seen&(1<<8) != 0 {
		required = 8
	}
	for i := 0; i < required; i++ {
		if i == 5 { // algorithm is optional
			continue
		}
		if seen&(1<<i) == 0 {
			return c, fmt.Errorf("%w: missing parameter %q", ErrMalformed, paramNames[i])
		}
	}
	return c, nil
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\r' || b == '\n' }

func skipSpace(s string) string {
	for s != "" && isSpace(s[0]) {
		s = s[1:]
	}
	return s
}

// Byte classes, looked up in a table because the parser is on the hot path.
const (
	cToken = 1 << iota // token character (RFC 3261 25.1)
	cBare              // may appear in an unquoted value
	cQText             // may appear unescaped in a quoted string
)

var class = func() (t [256]uint8) {
	for b := 0; b < 256; b++ {
		c := byte(b)
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-.!%*_+`'~", c) >= 0 {
			t[b] |= cToken
		}
		// Wider than a token on purpose (see ParseCredentials).
		if c > ' ' && c < 0x7f && c != ',' && c != '"' {
			t[b] |= cBare
		}
		if !isCTL(c) && c != '"' && c != '\\' {
			t[b] |= cQText
		}
	}
	return t
}()

func cutToken(s string) (tok, rest string) {
	i := 0
	for i < len(s) && class[s[i]]&cToken != 0 {
		i++
	}
	return s[:i], s[i:]
}

// cutBare cuts an unquoted value: anything visible up to a comma, space or
// quote.
func cutBare(s string) (v, rest string) {
	i := 0
	for i < len(s) && class[s[i]]&cBare != 0 {
		i++
	}
	return s[:i], s[i:]
}

// cutQuoted cuts a quoted-string starting at s[0] == '"' and returns its
// unescaped content.
func cutQuoted(s string) (v, rest string, err error) {
	escapes := false
	for i := 1; i < len(s); i++ {
		for i < len(s) && class[s[i]]&cQText != 0 {
			i++
		}
		if i == len(s) {
			break
		}
		switch b := s[i]; {
		case b == '"':
			if !escapes {
				return s[1:i], s[i+1:], nil
			}
			return unescape(s[1:i]), s[i+1:], nil
		case b == '\\':
			escapes = true
			i++
			if i == len(s) {
				return "", "", errors.New("unterminated quoted string")
			}
			if isCTL(s[i]) {
				return "", "", errors.New("control character")
			}
		default:
			return "", "", errors.New("control character")
		}
	}
	return "", "", errors.New("unterminated quoted string")
}

// isCTL reports control characters other than HTAB, which have no business
// in credentials and could smuggle line breaks into logs.
func isCTL(b byte) bool { return (b < ' ' && b != '\t') || b == 0x7f }

func unescape(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
