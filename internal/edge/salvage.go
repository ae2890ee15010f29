package edge

import (
	"bytes"
	"strconv"
	"strings"
)

// salvaged is what can still be read of a request sipgo could not parse:
// the header values a response must copy (RFC 3261 8.2.6.2), kept as raw
// text, and the first problem found.
type salvaged struct {
	method string
	vias   []string
	from   string
	to     string
	callID string
	cseq   string
	// code and problem say how to answer: 400 with the problem in the
	// reason phrase, or 416 for a Request-URI scheme we do not serve.
	code    int
	problem string
}

// answerable reports whether a response can be formed: a request (not a
// response and not an ACK, which is never answered) with a top Via that
// names a sent-by, a Call-ID, a CSeq, a From and a To.
func (s *salvaged) answerable() bool {
	if s.method == "" || strings.EqualFold(s.method, "ACK") {
		return false
	}
	if s.from == "" || s.to == "" || s.callID == "" || s.cseq == "" || len(s.vias) == 0 {
		return false
	}
	if f := strings.Fields(s.cseq); len(f) == 2 && strings.EqualFold(f[1], "ACK") {
		return false
	}
	return viaSentBy(s.vias[0])
}

// salvage reads msg, a request sipgo rejected, line by line without
// sipgo's parser: the start line, then header lines (folded lines
// joined), up to the blank line. datagram says msg is all there is, so a
// Content-Length beyond its end is a problem. It never fails; answerable
// says whether what it found is enough.
func salvage(msg []byte, datagram bool) salvaged {
	var s salvaged
	head, body, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	lines := strings.Split(string(head), "\n")
	bareCR := false
	for i, l := range lines {
		l = strings.TrimSuffix(l, "\r")
		if strings.IndexByte(l, '\r') >= 0 {
			// A CR not ending a line: copied back, it would end a header
			// line early in our response.
			l = strings.ReplaceAll(l, "\r", " ")
			bareCR = true
		}
		lines[i] = l
	}
	start := lines[0]
	if strings.HasPrefix(start, "SIP/") {
		// A response: never answered.
		return s
	}
	s.method, _, _ = strings.Cut(start, " ")
	if !isToken(s.method) {
		s.method = ""
	}
	s.checkStartLine(start)
	if bareCR {
		s.fail("bare CR")
	}

	var hdrs [][2]string
	for _, l := range lines[1:] {
		if l == "" {
			break
		}
		if (l[0] == ' ' || l[0] == '\t') && len(hdrs) > 0 {
			hdrs[len(hdrs)-1][1] += " " + strings.TrimSpace(l)
			continue
		}
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			s.fail("malformed header line")
			continue
		}
		hdrs = append(hdrs, [2]string{canonicalName(name), strings.TrimSpace(value)})
	}
	for _, h := range hdrs {
		name, value := h[0], h[1]
		switch name {
		case "Via":
			s.vias = append(s.vias, value)
			if !validVia(value) {
				s.fail("malformed Via")
			}
		case "From", "To", "Contact":
			if name == "From" && s.from == "" {
				s.from = value
			}
			if name == "To" && s.to == "" {
				s.to = value
			}
			if !validNameAddr(value, name == "Contact") {
				s.fail("malformed " + name)
			}
		case "Call-ID":
			if s.callID == "" {
				s.callID = value
			}
		case "CSeq":
			if s.cseq == "" {
				s.cseq = value
			}
			if !validCSeq(value) {
				s.fail("malformed CSeq")
			}
		case "Content-Length":
			n, err := strconv.ParseUint(value, 10, 31)
			switch {
			case err != nil:
				s.fail("malformed Content-Length")
			case datagram && int(n) > len(body):
				s.fail("Content-Length beyond the end of the message")
			}
		}
	}
	return s
}

// fail records the first problem found.
func (s *salvaged) fail(problem string) {
	if s.problem == "" {
		s.code, s.problem = 400, problem
	}
}

// checkStartLine checks the Request-Line: three parts separated by single
// spaces (RFC 4475 lwsstart, trws, lwsruri), a Request-URI with a
// well-formed scheme (ltgtruri) that we serve (novelsc: 416).
func (s *salvaged) checkStartLine(start string) {
	parts := strings.Split(start, " ")
	if len(parts) != 3 || !isToken(parts[0]) || !strings.HasPrefix(parts[2], "SIP/") || strings.ContainsAny(start, "\t") {
		s.fail("malformed Request-Line")
		return
	}
	scheme, rest, ok := strings.Cut(parts[1], ":")
	if !ok || rest == "" || !isScheme(scheme) || strings.ContainsAny(parts[1], "<>\"") {
		s.fail("malformed Request-URI")
		return
	}
	switch strings.ToLower(scheme) {
	case "sip", "sips", "tel":
	default:
		if s.problem == "" {
			s.code, s.problem = 416, "Unsupported URI Scheme"
		}
	}
}

// canonicalName maps a header name, compact forms included, onto the
// names salvage looks at; any other name comes back trimmed.
func canonicalName(name string) string {
	name = strings.TrimSpace(name)
	switch strings.ToLower(name) {
	case "via", "v":
		return "Via"
	case "from", "f":
		return "From"
	case "to", "t":
		return "To"
	case "contact", "m":
		return "Contact"
	case "call-id", "i":
		return "Call-ID"
	case "cseq":
		return "CSeq"
	case "content-length", "l":
		return "Content-Length"
	}
	return name
}

// isToken reports whether s is a non-empty RFC 3261 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-.!%*_+`'~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// isScheme reports whether s is an RFC 3986 scheme.
func isScheme(s string) bool {
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// validVia checks every comma-separated value of a Via header: a sent
// protocol SIP/2.0/transport and a sent-by (RFC 4475 badinv01 has empty
// values after its commas).
func validVia(v string) bool {
	for _, part := range strings.Split(v, ",") {
		if !viaSentBy(part) {
			return false
		}
	}
	return true
}

// viaSentBy reports whether one Via value starts with SIP/2.0/transport
// and a host, LWS around the slashes allowed (RFC 4475 wsinv).
func viaSentBy(v string) bool {
	proto, rest, ok := strings.Cut(strings.TrimSpace(v), "/")
	if !ok || !strings.EqualFold(strings.TrimSpace(proto), "SIP") {
		return false
	}
	ver, rest, ok := strings.Cut(rest, "/")
	if !ok || strings.TrimSpace(ver) != "2.0" {
		return false
	}
	f := strings.Fields(rest)
	if len(f) < 2 || !isToken(f[0]) {
		return false
	}
	host, _, _ := strings.Cut(f[1], ";")
	if host == "" {
		return false
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(".-:[]", c) >= 0) {
			return false
		}
	}
	return true
}

// validCSeq checks "number method" with the number within 2**31-1
// (RFC 4475 scalar02).
func validCSeq(v string) bool {
	f := strings.Fields(v)
	if len(f) != 2 || !isToken(f[1]) {
		return false
	}
	_, err := strconv.ParseUint(f[0], 10, 31)
	return err == nil
}

// validNameAddr checks a From, To or Contact value: quotes balanced
// (RFC 4475 quotbal), a display name that is a quoted string or tokens
// (baddn), and an addr-spec in angle brackets without surrounding spaces
// (badaspec). A Contact may be "*" or a list.
func validNameAddr(v string, list bool) bool {
	if list && v == "*" {
		return true
	}
	if quotes := countQuotes(v); quotes%2 != 0 {
		return false
	}
	if list {
		// Checking each value of a list needs comma handling inside
		// quotes; the balance check above is what matters here.
		return true
	}
	lt := strings.IndexByte(v, '<')
	if lt < 0 {
		uri, _, _ := strings.Cut(v, ";")
		uri = strings.TrimSpace(uri)
		scheme, _, ok := strings.Cut(uri, ":")
		return ok && isScheme(scheme) && !strings.ContainsAny(uri, " \t\"")
	}
	display := strings.TrimSpace(v[:lt])
	if display != "" && !(strings.HasPrefix(display, "\"") && strings.HasSuffix(display, "\"") && len(display) >= 2) {
		for _, w := range strings.Fields(display) {
			if !isToken(w) {
				return false
			}
		}
	}
	gt := strings.IndexByte(v[lt:], '>')
	if gt < 0 {
		return false
	}
	spec := v[lt+1 : lt+gt]
	if spec == "" || spec != strings.TrimSpace(spec) {
		return false
	}
	scheme, _, ok := strings.Cut(spec, ":")
	return ok && isScheme(scheme)
}

// countQuotes counts the double quotes that are not escaped.
func countQuotes(v string) int {
	n := 0
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++
		case '"':
			n++
		}
	}
	return n
}

// response writes the stateless answer to s: the status line, the Vias,
// From, To (with a tag of ours unless it has one), Call-ID and CSeq as
// received, and an empty body.
func (s *salvaged) response(code int, reason, server, toTag string) []byte {
	var b bytes.Buffer
	b.Grow(256)
	b.WriteString("SIP/2.0 ")
	b.WriteString(strconv.Itoa(code))
	b.WriteByte(' ')
	b.WriteString(reason)
	b.WriteString("\r\n")
	for _, v := range s.vias {
		b.WriteString("Via: " + v + "\r\n")
	}
	b.WriteString("From: " + s.from + "\r\n")
	b.WriteString("To: " + s.to)
	if !hasTag(s.to) {
		b.WriteString(";tag=" + toTag)
	}
	b.WriteString("\r\nCall-ID: " + s.callID + "\r\n")
	b.WriteString("CSeq: " + s.cseq + "\r\n")
	if server != "" {
		b.WriteString("Server: " + server + "\r\n")
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.Bytes()
}

// hasTag reports whether a To value carries a tag parameter (LWS
// allowed around the '=', as in RFC 4475 wsinv).
func hasTag(to string) bool {
	if gt := strings.LastIndexByte(to, '>'); gt >= 0 {
		to = to[gt:]
	}
	compact := strings.ToLower(strings.Join(strings.Fields(to), ""))
	return strings.Contains(compact, ";tag=")
}
