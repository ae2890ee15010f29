package events

// Events leave the process and are read by anyone subscribed to the
// subject, so nothing that looks like a credential goes into them. Routr
// itself puts trunk credentials (X-Gateway-Auth: base64 of user:password)
// and its JWT (X-Connect-Token) in X- headers, and users put API keys in
// the extended metadata of their resources; both are left out here.

// credentialWords are matched against a lower-cased name with '-', '_' and
// '.' removed, so "X-Gateway-Auth", "api_key" and "accessKeySecret" match.
// IsCredentialName dispatches on their first letter; keep both in step.
var credentialWords = [...]string{
	"auth", // authorization, proxy-auth, x-gateway-auth, oauth...
	"apikey",
	"token",
	"secret",
	"password",
	"passwd",
	"passphrase",
	"privatekey",
	"credential",
	"cookie",
}

// IsCredentialName reports whether a header or metadata key name looks like
// it carries a credential: its name, lower-cased and without '-', '_' or
// '.', contains auth, apikey, token, secret, password, passwd, passphrase,
// privatekey, credential or cookie. Such headers and keys are never
// published.
func IsCredentialName(name string) bool {
	var buf [64]byte
	n := buf[:0]
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '-' || c == '_' || c == '.':
			continue
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		n = append(n, c)
	}
	for i := range n {
		switch n[i] {
		case 'a':
			if wordAt(n, i, "auth") || wordAt(n, i, "apikey") {
				return true
			}
		case 't':
			if wordAt(n, i, "token") {
				return true
			}
		case 's':
			if wordAt(n, i, "secret") {
				return true
			}
		case 'p':
			if wordAt(n, i, "passw") || wordAt(n, i, "passphrase") || wordAt(n, i, "privatekey") {
				return true // passw: password, passwd
			}
		case 'c':
			if wordAt(n, i, "credential") || wordAt(n, i, "cookie") {
				return true
			}
		}
	}
	return false
}

// wordAt reports whether w is in s at i.
func wordAt(s []byte, i int, w string) bool {
	return len(s)-i >= len(w) && string(s[i:i+len(w)]) == w // no copy
}

// isCredentialKey is IsCredentialName for metadata keys.
func isCredentialKey(k string) bool { return IsCredentialName(k) }

// isExtraHeader reports whether a header belongs in extraHeaders: its name
// starts with "X-" in any case and it does not carry a credential.
func isExtraHeader(name string) bool {
	return HasXPrefix(name) && !IsCredentialName(name)
}

// HasXPrefix reports whether a header name starts with "X-" in any case:
// the headers events carry in extraHeaders.
func HasXPrefix(name string) bool {
	return len(name) > 2 && (name[0] == 'X' || name[0] == 'x') && name[1] == '-'
}
