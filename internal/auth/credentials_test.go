package auth

import (
	"errors"
	"strings"
	"testing"
)

const sipgoHeader = `Digest username="1001", realm="sip.local", nonce="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", uri="sip:sip.local", algorithm=MD5, cnonce="3f5a7c9e1b2d4f60", opaque="b3BhcXVlb3BhcXVl", qop=auth, nc=00000001, response="0123456789abcdef0123456789abcdef"`

func TestParseCredentials(t *testing.T) {
	base := Credentials{Username: "1001", Realm: "sip.local", Nonce: "n", URI: "sip:sip.local", Response: "r"}
	withQOP := base
	withQOP.QOP, withQOP.CNonce, withQOP.NC = "auth", "c", "00000001"

	good := []struct {
		name string
		in   string
		want Credentials
	}{
		{"sipgo client", sipgoHeader, Credentials{Username: "1001", Realm: "sip.local",
			Nonce: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", URI: "sip:sip.local", Algorithm: "MD5",
			CNonce: "3f5a7c9e1b2d4f60", Opaque: "b3BhcXVlb3BhcXVl", QOP: "auth", NC: "00000001",
			Response: "0123456789abcdef0123456789abcdef"}},
		{"minimal", `Digest username="1001",realm="sip.local",nonce="n",uri="sip:sip.local",response="r"`, base},
		{"any order", `Digest response="r", uri="sip:sip.local", nonce="n", realm="sip.local", username="1001"`, base},
		{"scheme and names in any case", `dIgEsT USERNAME="1001", Realm="sip.local", NONCE="n", Uri="sip:sip.local", RESPONSE="r"`, base},
		{"extra spaces and tabs", "  Digest \t username = \"1001\" ,\trealm=\"sip.local\"  ,  nonce= \"n\", uri =\"sip:sip.local\", response=\"r\"  ", base},
		{"folded line", "Digest username=\"1001\",\r\n realm=\"sip.local\", nonce=\"n\", uri=\"sip:sip.local\", response=\"r\"", base},
		{"empty list elements", `Digest , username="1001",, realm="sip.local", nonce="n", ,uri="sip:sip.local", response="r",`, base},
		{"unquoted values", `Digest username=1001, realm=sip.local, nonce=n, uri=sip:sip.local, response=r`, base},
		{"qop quoted", `Digest username="1001", realm="sip.local", nonce="n", uri="sip:sip.local", response="r", qop="auth", cnonce="c", nc=00000001`, withQOP},
		{"unknown params ignored", `Digest username="1001", realm="sip.local", foo="a,b", nonce="n", uri="sip:sip.local", response="r", userhash=false, foo=1`, base},
		{"escapes", `Digest username="a\"b\\c\d", realm="sip.local", nonce="n", uri="sip:sip.local", response="r"`,
			func() Credentials { c := base; c.Username = `a"b\cd`; return c }()},
		{"empty quoted value", `Digest username="", realm="sip.local", nonce="n", uri="sip:sip.local", response="r"`,
			func() Credentials { c := base; c.Username = ""; return c }()},
		{"utf-8 in quoted string", `Digest username="José", realm="sip.local", nonce="n", uri="sip:sip.local", response="r"`,
			func() Credentials { c := base; c.Username = "José"; return c }()},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCredentials(tt.in)
			if err != nil {
				t.Fatalf("error %v", err)
			}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}

	const tail = `, realm="sip.local", nonce="n", uri="sip:sip.local", response="r"`
	bad := []struct {
		name string
		in   string
		want string
	}{
		{"empty", ``, `auth: malformed credentials: scheme is not Digest`},
		{"basic", `Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==`, `auth: malformed credentials: scheme is not Digest`},
		{"scheme glued", `Digestusername="1001"` + tail, `auth: malformed credentials: scheme is not Digest`},
		{"scheme only", `Digest`, `auth: malformed credentials: missing parameter "username"`},
		{"missing username", `Digest realm="sip.local", nonce="n", uri="sip:sip.local", response="r"`, `auth: malformed credentials: missing parameter "username"`},
		{"missing realm", `Digest username="1001", nonce="n", uri="sip:sip.local", response="r"`, `auth: malformed credentials: missing parameter "realm"`},
		{"missing nonce", `Digest username="1001", realm="sip.local", uri="sip:sip.local", response="r"`, `auth: malformed credentials: missing parameter "nonce"`},
		{"missing uri", `Digest username="1001", realm="sip.local", nonce="n", response="r"`, `auth: malformed credentials: missing parameter "uri"`},
		{"missing response", `Digest username="1001", realm="sip.local", nonce="n", uri="sip:sip.local"`, `auth: malformed credentials: missing parameter "response"`},
		{"qop without cnonce", `Digest username="1001"` + tail + `, qop=auth, nc=00000001`, `auth: malformed credentials: missing parameter "cnonce"`},
		{"qop without nc", `Digest username="1001"` + tail + `, qop=auth, cnonce="c"`, `auth: malformed credentials: missing parameter "nc"`},
		{"duplicate", `Digest username="1001"` + tail + `, NONCE="m"`, `auth: malformed credentials: duplicate parameter "nonce"`},
		{"duplicate empty", `Digest username="", username="1001"` + tail, `auth: malformed credentials: duplicate parameter "username"`},
		{"no comma", `Digest username="1001" realm="sip.local"`, `auth: malformed credentials: expected ',' at offset 23`},
		{"no equals", `Digest username "1001"` + tail, `auth: malformed credentials: expected '=' after "username"`},
		{"name missing", `Digest ="1001"` + tail, `auth: malformed credentials: expected parameter name at offset 7`},
		{"bad name char", `Digest user@name="1001"` + tail, `auth: malformed credentials: expected '=' after "user"`},
		{"empty bare value", `Digest username=, realm="sip.local"`, `auth: malformed credentials: empty value for "username"`},
		{"value at end missing", `Digest username=`, `auth: malformed credentials: empty value for "username"`},
		{"unterminated quote", `Digest username="1001`, `auth: malformed credentials: unterminated quoted string in value of "username"`},
		{"escape at end", `Digest username="1001\`, `auth: malformed credentials: unterminated quoted string in value of "username"`},
		{"control char", "Digest username=\"10\x0001\"" + tail, `auth: malformed credentials: control character in value of "username"`},
		{"escaped newline", "Digest username=\"10\\\n01\"" + tail, `auth: malformed credentials: control character in value of "username"`},
		{"quote inside bare value", `Digest username=ab"c"` + tail, `auth: malformed credentials: expected ',' at offset 18`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCredentials(tt.in)
			if err == nil {
				t.Fatalf("no error, got %+v", got)
			}
			if err.Error() != tt.want {
				t.Errorf("error %q\nwant  %q", err, tt.want)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error does not wrap ErrMalformed")
			}
		})
	}
}

func TestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = ParseCredentials(sipgoHeader) }); n != 0 {
		t.Errorf("ParseCredentials allocates %v times, want 0", n)
	}
	d := newDigest(t, Config{})
	c := mustParse(t, answer(t, d.Challenge("sip.local", false)[0], "REGISTER", "sip:sip.local", "1001", "pw", false))
	if n := testing.AllocsPerRun(100, func() { d.Verify(c, "REGISTER", "sip.local", "pw") }); n != 0 {
		t.Errorf("Verify allocates %v times, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { d.Challenge("sip.local", false) }); n > 2 {
		t.Errorf("Challenge allocates %v times, want <= 2", n)
	}
}

// format writes credentials back as a header value, quoting everything.
func format(c Credentials) string {
	q := func(s string) string { return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"` }
	var b strings.Builder
	b.WriteString("Digest ")
	for i, name := range paramNames {
		v := *c.field(i)
		// Optional parameters are written when set; cnonce and nc also
		// whenever qop is, since a present qop requires them.
		if v == "" && i >= 5 && !((i == 6 || i == 7) && c.QOP != "") {
			continue
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(name + "=" + q(v))
	}
	return b.String()
}
