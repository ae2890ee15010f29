package events

import "strings"

// NormalizeURI reduces a SIP URI, or a From/To/Contact header value that
// holds one (name-addr or addr-spec), to "sip:<user>@<host>" as the compat
// payloads write it: no display name, password, port, parameters or
// headers. The scheme is always "sip:" (as Routr writes it, also for sips:);
// a URI without user part gives "sip:<host>"; a tel: URI gives
// "tel:<number>" without parameters. A string that holds no URI is returned
// trimmed. An input that is already normal is returned as is, without
// allocating.
func NormalizeURI(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '<'); i >= 0 {
		s = s[i+1:]
		if j := strings.IndexByte(s, '>'); j >= 0 {
			s = s[:j]
		}
		s = strings.TrimSpace(s)
	}
	var rest string
	switch {
	case hasPrefixFold(s, "sip:"):
		rest = s[4:]
	case hasPrefixFold(s, "sips:"):
		rest = s[5:]
	case hasPrefixFold(s, "tel:"):
		num := s[4:]
		if i := strings.IndexByte(num, ';'); i >= 0 {
			num = num[:i]
		}
		if i := strings.IndexByte(num, '?'); i >= 0 {
			num = num[:i]
		}
		if len(num) == len(s)-4 && s[:4] == "tel:" {
			return s
		}
		return "tel:" + num
	default:
		return s
	}

	// userinfo ends at the first '@': '@' cannot appear unescaped in the
	// user, password, host, parameters or headers.
	user, hostport := "", rest
	if at := strings.IndexByte(rest, '@'); at >= 0 {
		user, hostport = rest[:at], rest[at+1:]
		if i := strings.IndexByte(user, ':'); i >= 0 {
			user = user[:i] // drop the password
		}
	}
	for i := 0; i < len(hostport); i++ {
		if c := hostport[i]; c == ';' || c == '?' || c == '>' || c == ' ' || c == '\t' {
			hostport = hostport[:i]
			break
		}
	}
	host := hostport
	if strings.HasPrefix(host, "[") {
		if i := strings.IndexByte(host, ']'); i >= 0 {
			host = host[:i+1]
		}
	} else if i := strings.IndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}

	if user == "" {
		if s[:4] == "sip:" && len(s) == 4+len(host) {
			return s
		}
		return "sip:" + host
	}
	if s[:4] == "sip:" && len(s) == 4+len(user)+1+len(host) {
		return s
	}
	return "sip:" + user + "@" + host
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
