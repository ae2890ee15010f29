package resources

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// checker collects the problems of per-resource value checks.
type checker struct {
	probs []Problem
}

// add records a problem with b's field unless Parse already reported that
// field or a parent of it (a wrong type leaves a zero value that would
// fail again here).
func (c *checker) add(b *Base, field, format string, args ...any) {
	for p := field; p != ""; p = parentPath(p) {
		if b.isBad(p) {
			return
		}
	}
	c.probs = append(c.probs, b.problemf(field, format, args...))
}

// required reports a missing value.
func (c *checker) required(b *Base, field, v string) bool {
	if v == "" {
		c.add(b, field, "required field missing")
		return false
	}
	return true
}

func (c *checker) base(b *Base) {
	switch b.APIVersion {
	case "v2beta1", "v2":
	case "":
		c.add(b, "apiVersion", "required field missing")
	default:
		c.add(b, "apiVersion", "unsupported apiVersion %q (want v2beta1 or v2)", b.APIVersion)
	}
	if c.required(b, "ref", b.Ref) && !isToken(b.Ref) {
		c.add(b, "ref", "must not contain spaces or control characters: %q", b.Ref)
	}
}

func (c *checker) domain(x *Domain) {
	c.base(&x.Base)
	const f = "spec.context.domainUri"
	if c.required(&x.Base, f, x.DomainURI) {
		if !isHost(x.DomainURI) {
			c.add(&x.Base, f, "%q is not a valid host name", x.DomainURI)
		}
		x.DomainURI = strings.ToLower(x.DomainURI)
	}
	for i := range x.EgressPolicies {
		e := &x.EgressPolicies[i]
		p := "spec.context.egressPolicies[" + strconv.Itoa(i) + "]"
		if c.required(&x.Base, p+".rule", e.Rule) {
			re, err := regexp.Compile(e.Rule)
			if err != nil {
				c.add(&x.Base, p+".rule", "invalid regular expression: %v", unwrapRegexpError(err))
			}
			e.Regexp = re
		}
		c.required(&x.Base, p+".numberRef", e.NumberRef)
	}
}

// unwrapRegexpError drops the "error parsing regexp: " prefix.
func unwrapRegexpError(err error) string {
	return strings.TrimPrefix(err.Error(), "error parsing regexp: ")
}

func (c *checker) agent(x *Agent) {
	c.base(&x.Base)
	c.username(&x.Base, "spec.username", x.Username)
	c.required(&x.Base, "spec.domainRef", x.DomainRef)
	switch strings.ToLower(string(x.Privacy)) {
	case "", "none":
		x.Privacy = PrivacyNone
	case "private":
		x.Privacy = PrivacyPrivate
	default:
		c.add(&x.Base, "spec.privacy", "invalid value %q (want Private or None)", string(x.Privacy))
	}
	c.contacts(&x.Base, x.MaxContacts, x.Expires)
}

func (c *checker) contacts(b *Base, maxContacts, expires int) {
	if maxContacts < -1 {
		c.add(b, "spec.maxContacts", "must be -1 (no limit) or more, got %d", maxContacts)
	}
	if expires < 0 {
		c.add(b, "spec.expires", "must not be negative, got %d", expires)
	}
}

// username checks the user part of a SIP URI.
func (c *checker) username(b *Base, field, v string) {
	if c.required(b, field, v) && (!isToken(v) || strings.ContainsAny(v, "@:<>\"")) {
		c.add(b, field, "%q is not a valid SIP user name (no spaces, @, :, <, > or quotes)", v)
	}
}

func (c *checker) credentials(x *Credentials) {
	c.base(&x.Base)
	c.username(&x.Base, "spec.credentials.username", x.Username)
	c.required(&x.Base, "spec.credentials.password", x.Password)
}

func (c *checker) peer(x *Peer) {
	c.base(&x.Base)
	c.username(&x.Base, "spec.username", x.Username)
	c.aor(&x.Base, "spec.aor", x.AOR, true)
	if x.ContactAddr != "" && !isHostPort(x.ContactAddr) {
		c.add(&x.Base, "spec.contactAddr", "%q is not host or host:port", x.ContactAddr)
	}
	alg := strings.ReplaceAll(strings.ToLower(string(x.BalancingAlgorithm)), "_", "-")
	switch BalancingAlgorithm(alg) {
	case "", RoundRobin, LeastSessions:
		x.BalancingAlgorithm = BalancingAlgorithm(alg)
	default:
		c.add(&x.Base, "spec.loadBalancing.algorithm", "invalid value %q (want round-robin or least-sessions)", string(x.BalancingAlgorithm))
	}
	c.contacts(&x.Base, x.MaxContacts, x.Expires)
}

// aor checks a "sip:..." or "backend:..." address, as Routr allows for
// Peer aor and Number aorLink.
func (c *checker) aor(b *Base, field, v string, required bool) {
	if v == "" {
		if required {
			c.add(b, field, "required field missing")
		}
		return
	}
	scheme, rest, ok := strings.Cut(v, ":")
	if !ok || (scheme != "sip" && scheme != "backend") || rest == "" || !isToken(v) {
		c.add(b, field, "%q must be sip:user@host or backend:name", v)
	}
}

var headerNameRE = regexp.MustCompile(`^[A-Za-z0-9-]*[A-Za-z0-9]$`)

func (c *checker) number(x *Number) {
	c.base(&x.Base)
	const f = "spec.location.telUrl"
	if c.required(&x.Base, f, x.TelURL) {
		if !strings.HasPrefix(strings.ToLower(x.TelURL), "tel:") || len(x.TelURL) == 4 || !isToken(x.TelURL) {
			c.add(&x.Base, f, "%q must be tel: followed by the number, as in tel:+17066041487", x.TelURL)
		}
	}
	c.aor(&x.Base, "spec.location.aorLink", x.AORLink, false)
	if h := x.SessionAffinityHeader; h != "" && !headerNameRE.MatchString(h) {
		c.add(&x.Base, "spec.location.sessionAffinityHeader", "%q is not a header name (letters, digits and dashes)", h)
	}
	for i, h := range x.ExtraHeaders {
		p := "spec.location.extraHeaders[" + strconv.Itoa(i) + "]"
		if c.required(&x.Base, p+".name", h.Name) && !headerNameRE.MatchString(h.Name) {
			c.add(&x.Base, p+".name", "%q is not a header name (letters, digits and dashes)", h.Name)
		}
		if c.required(&x.Base, p+".value", h.Value) && strings.ContainsAny(h.Value, "\r\n") {
			c.add(&x.Base, p+".value", "must not contain line breaks")
		}
	}
}

func (c *checker) trunk(x *Trunk) {
	c.base(&x.Base)
	if x.InboundURI != "" {
		if !isHost(x.InboundURI) {
			c.add(&x.Base, "spec.inbound.uri", "%q is not a valid host name or IP address", x.InboundURI)
		}
		x.InboundURI = strings.ToLower(x.InboundURI)
	} else if x.AccessControlListRef != "" || x.InboundCredentialsRef != "" {
		c.add(&x.Base, "spec.inbound.uri", "required field missing")
	}
	if _, ok := x.line("spec.outbound"); ok && len(x.URIs) == 0 {
		c.add(&x.Base, "spec.outbound.uris", "required field missing")
	}
	for i := range x.URIs {
		u := &x.URIs[i]
		p := "spec.outbound.uris[" + strconv.Itoa(i) + "]"
		if c.required(&x.Base, p+".uri.host", u.Host) && !isHost(u.Host) {
			c.add(&x.Base, p+".uri.host", "%q is not a valid host name or IP address", u.Host)
		}
		if u.User != "" && (!isToken(u.User) || strings.ContainsAny(u.User, "@:<>\"")) {
			c.add(&x.Base, p+".uri.user", "%q is not a valid SIP user name", u.User)
		}
		if u.Port < 0 || u.Port > 65535 || (u.Port == 0 && x.hasLine(p+".uri.port")) {
			c.add(&x.Base, p+".uri.port", "must be 1..65535, got %d", u.Port)
		}
		switch t := strings.ToLower(u.Transport); t {
		case "", "udp", "tcp", "tls", "sctp", "ws", "wss":
			u.Transport = t
		default:
			c.add(&x.Base, p+".uri.transport", "invalid value %q (want udp, tcp, tls, sctp, ws or wss)", u.Transport)
		}
		if u.Priority < 0 || u.Priority > 65535 {
			c.add(&x.Base, p+".priority", "must be 0..65535, got %d", u.Priority)
		}
		if u.Weight < 0 || u.Weight > 65535 || (u.Weight == 0 && x.hasLine(p+".weight")) {
			c.add(&x.Base, p+".weight", "must be 1..65535, got %d", u.Weight)
		}
	}
}

func (c *checker) acl(x *AccessControlList) {
	c.base(&x.Base)
	x.allow = c.nets(&x.Base, "spec.accessControlList.allow", x.Allow)
	x.deny = c.nets(&x.Base, "spec.accessControlList.deny", x.Deny)
}

func (c *checker) nets(b *Base, field string, rules []string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(rules))
	for i, r := range rules {
		p, err := ParseNet(r)
		if err != nil {
			c.add(b, field+"["+strconv.Itoa(i)+"]", "%v", err)
			continue
		}
		out = append(out, p)
	}
	return out
}

// isToken reports whether s is non-empty and has no spaces or control
// characters.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// isHost reports whether s is an IP address or a host name (RFC 1123
// labels; a single label such as "localhost" is fine, a name whose last
// label is all digits is not, since it would be a broken IPv4 address).
func isHost(s string) bool {
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		return a.Zone() == ""
	}
	return isHostname(s)
}

func isHostname(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	last := labels[len(labels)-1]
	return strings.TrimLeft(last, "0123456789") != ""
}

// isHostPort reports whether s is host or host:port ([v6]:port for IPv6).
func isHostPort(s string) bool {
	if isHost(s) {
		return true
	}
	h, p, err := net.SplitHostPort(s)
	if err != nil || !isHost(h) {
		return false
	}
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

// where formats a resource's location for "also defined at" messages.
func where(b *Base) string {
	switch {
	case b.Source.File == "":
		return fmt.Sprintf("%s %q", b.Kind, b.Ref)
	case b.Source.Line > 0:
		return fmt.Sprintf("%s %q (%s:%d)", b.Kind, b.Ref, b.Source.File, b.Source.Line)
	}
	return fmt.Sprintf("%s %q (%s)", b.Kind, b.Ref, b.Source.File)
}
