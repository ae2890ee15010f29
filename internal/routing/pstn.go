package routing

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"github.com/routr-go/routr/internal/resources"
)

// Privacy header values (RFC 3323) sent towards the PSTN.
const (
	privacyID   = "id"
	privacyNone = "none"
)

// toPSTN routes a call leaving through number's trunk. The Request-URI
// keeps the dialed user and takes each hop's host, port and transport, as
// Routr's fixRequestURI does.
//
// The identity headers are Routr's: Remote-Party-ID and
// P-Asserted-Identity naming the Number at the trunk's host, and a
// Privacy header replacing the caller's. Routr always writes "none"
// (and "private", not an RFC 3323 value, when it means to hide); we write
// "id" for private callers, and add privacy=full to Remote-Party-ID.
// Routr's X-Gateway-Auth header, which carries the trunk's credentials
// in base64, is never sent: the edge answers the provider's challenge.
func toPSTN(in Input, number *resources.Number, private bool) Decision {
	if number == nil || number.Trunk == nil {
		return reject(404, "Not Found")
	}
	trunk := number.Trunk
	hops := Hops(trunk, in.TargetUser, in.turn("trunk:"+trunk.Ref))
	if len(hops) == 0 {
		return reject(503, "Service Unavailable")
	}
	tel := strings.TrimPrefix(number.TelURL, "tel:")
	host := hops[0].Host
	privacy, rpid := privacyNone, "<sip:"+tel+"@"+host+">;screen=yes;party=calling"
	if private {
		privacy, rpid = privacyID, rpid+";privacy=full"
	}
	pai := "<sip:" + tel + "@" + host + ";user=phone>"
	if in.DisplayName != "" {
		pai = quote(in.DisplayName) + " " + pai
	}
	return Decision{
		Number: number,
		Trunk:  trunk,
		Hops:   hops,
		Remove: []string{"Privacy", "Remote-Party-ID", "P-Asserted-Identity", "P-Preferred-Identity"},
		Headers: []Header{
			{"Privacy", privacy},
			{"Remote-Party-ID", rpid},
			{"P-Asserted-Identity", pai},
		},
	}
}

func (in Input) turn(key string) uint64 {
	if in.Turn == nil {
		return 0
	}
	return in.Turn(key)
}

// Hops returns the enabled outbound URIs of a trunk in the order a call
// tries them: by priority, lowest first (as DNS SRV orders them); among
// URIs of equal priority, turn picks the first in proportion to weight
// (a URI without weight counts 1), and the others follow by weight. A
// request to user goes to sip:user@host:port at each hop.
func Hops(t *resources.Trunk, user string, turn uint64) []Hop {
	uris := make([]resources.TrunkURI, 0, len(t.URIs))
	for _, u := range t.URIs {
		if u.Enabled && u.Host != "" {
			uris = append(uris, u)
		}
	}
	slices.SortStableFunc(uris, func(a, b resources.TrunkURI) int {
		if c := cmp.Compare(a.Priority, b.Priority); c != 0 {
			return c
		}
		return cmp.Compare(weight(b), weight(a))
	})
	for i := 0; i < len(uris); {
		j := i + 1
		for j < len(uris) && uris[j].Priority == uris[i].Priority {
			j++
		}
		rotateByWeight(uris[i:j], turn)
		i = j
	}
	hops := make([]Hop, 0, len(uris))
	for _, u := range uris {
		tp := u.Transport
		if tp == "" {
			tp = "udp"
		}
		port := u.Port
		if port == 0 {
			port = 5060
			if tp == "tls" || tp == "wss" {
				port = 5061
			}
		}
		uri := "sip:"
		if user != "" {
			uri += user + "@"
		}
		host := u.Host
		if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
			host = "[" + host + "]"
		}
		uri += host + ":" + strconv.Itoa(port)
		if tp != "udp" {
			uri += ";transport=" + tp
		}
		hops = append(hops, Hop{URI: uri, User: u.User, Host: u.Host, Port: port, Transport: tp})
	}
	return hops
}

func weight(u resources.TrunkURI) int {
	if u.Weight <= 0 {
		return 1
	}
	return u.Weight
}

// rotateByWeight moves to the front the URI that turn falls on when each
// URI owns weight consecutive turns out of the total.
func rotateByWeight(uris []resources.TrunkURI, turn uint64) {
	if len(uris) < 2 {
		return
	}
	total := 0
	for _, u := range uris {
		total += weight(u)
	}
	at := int(turn % uint64(total))
	for i, u := range uris {
		if at < weight(u) {
			first := uris[i]
			copy(uris[1:i+1], uris[:i])
			uris[0] = first
			return
		}
		at -= weight(u)
	}
}

// quote makes a SIP quoted-string (RFC 3261 25.1): backslash and double
// quote escaped, UTF-8 kept as it is, control characters dropped.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
