package sip

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// routr-go patch: the URI parser's states are numbers dispatched by a
// switch, not function values: calling them through a function value made
// the *Uri escape, so that every Uri parsed into a local (the request
// line's, routr's) was allocated on the heap.
type uriFSM int

const (
	uriStateDone uriFSM = iota
	uriStateSchemeS
	uriStateSlashesS
	uriStateUserS
	uriStateHostS
	uriStateHostIPV6S
	uriStatePortS
	uriStateUriParamsS
	uriStateHeadersS
)

// ParseUri converts a string representation of a URI into a Uri object. SIP
// and SIPS URIs are parsed according to RFC 3261 section 19.1.1. For every
// other scheme, the scheme-specific part is available through [Uri.Raw].
func ParseUri(uriStr string, uri *Uri) (err error) {
	if len(uriStr) == 0 {
		return errors.New("empty URI")
	}
	state := uriStateSchemeS
	str := uriStr
	for state != uriStateDone {
		switch state {
		case uriStateSchemeS:
			state, str, err = uriStateScheme(uri, str)
		case uriStateSlashesS:
			state, str, err = uriStateSlashes(uri, str)
		case uriStateUserS:
			state, str, err = uriStateUser(uri, str)
		case uriStateHostS:
			state, str, err = uriStateHost(uri, str)
		case uriStateHostIPV6S:
			state, str, err = uriStateHostIPV6(uri, str)
		case uriStatePortS:
			state, str, err = uriStatePort(uri, str)
		case uriStateUriParamsS:
			state, str, err = uriStateUriParams(uri, str)
		case uriStateHeadersS:
			state, str, err = uriStateHeaders(uri, str)
		}
		if err != nil {
			return
		}
	}
	return
}

func uriStateScheme(uri *Uri, s string) (uriFSM, string, error) {
	// Do fast checks. Minimum uri
	if len(s) < 3 {
		if s == "*" {
			// Normally this goes under url path, but we set on host
			uri.Host = "*"
			uri.Wildcard = true
			return uriStateDone, "", nil
		}
		return uriStateDone, "", fmt.Errorf("not valid sip uri")
	}

	for i, c := range s {
		if c == ':' {
			uri.Scheme = ASCIIToLower(s[:i])
			if uri.Scheme != "sip" && uri.Scheme != "sips" {
				// Only SIP and SIPS URIs use the user, host, port, URI
				// parameters and headers grammar below. Keep the
				// scheme-specific part of every other URI uninterpreted so
				// that custom schemes can be handled by the application.
				uri.raw = s[i+1:]
				return uriStateDone, "", nil
			}
			return uriStateSlashesS, s[i+1:], nil
		}
		// Check is c still ASCII
		if !isASCII(c) {
			return uriStateDone, "", fmt.Errorf("invalid uri scheme")
		}
	}

	return uriStateDone, "", fmt.Errorf("missing protocol scheme")
}

func uriStateSlashes(uri *Uri, s string) (uriFSM, string, error) {
	// Check does uri contain slashes
	// They are valid in uri but normally we cut them
	s, uri.HierarhicalSlashes = strings.CutPrefix(s, "//")
	return uriStateUserS, s, nil
}

func uriStateUser(uri *Uri, s string) (uriFSM, string, error) {
	var userend int = 0
	for i, c := range s {
		if c == '[' {
			// IPV6
			return uriStateHostS, s[i:], nil
		}

		if c == ':' {
			userend = i
		}

		if c == '@' {
			if userend > 0 {
				uri.User = s[:userend]
				uri.Password = s[userend+1 : i]
			} else {
				uri.User = s[:i]
			}
			return uriStateHostS, s[i+1:], nil
		}
	}

	return uriStateHostS, s, nil
}

func uriStateHost(uri *Uri, s string) (uriFSM, string, error) {
	for i, c := range s {
		if c == '[' {
			return uriStateHostIPV6S, s[i:], nil
		}

		if c == ':' {
			uri.Host = s[:i]
			return uriStatePortS, s[i+1:], nil
		}

		if c == ';' {
			uri.Host = s[:i]
			return uriStateUriParamsS, s[i+1:], nil
		}

		if c == '?' {
			uri.Host = s[:i]
			return uriStateHeadersS, s[i+1:], nil
		}
	}
	// If no special chars found, it means we are at end
	uri.Host = s
	// Check is this wildcard
	uri.Wildcard = s == "*"
	return uriStateUriParamsS, "", nil
}

func uriStateHostIPV6(uri *Uri, s string) (uriFSM, string, error) {
	// ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff max 39 + 2 brackets
	// Do not waste time looking end
	maxs := min(len(s), 42)

	ind := strings.Index(s[:maxs], "]")
	if ind <= 0 {
		return uriStateDone, s, fmt.Errorf("IPV6 no closing bracket")
	}
	uri.Host = s[:ind+1]

	if ind+1 == len(s) {
		// finished
		return uriStateUriParamsS, "", nil
	}

	s = s[ind+1:]

	// Check now termination
	c := s[0]
	if c == ':' {
		return uriStatePortS, s[1:], nil
	}

	if c == ';' {
		return uriStateUriParamsS, s[1:], nil
	}

	if c == '?' {
		return uriStateHeadersS, s[1:], nil
	}

	return uriStateUriParamsS, "", nil
}

func uriStatePort(uri *Uri, s string) (uriFSM, string, error) {
	var err error
	for i, c := range s {
		if c == ';' {
			uri.Port, err = strconv.Atoi(s[:i])
			return uriStateUriParamsS, s[i+1:], err
		}

		if c == '?' {
			uri.Port, err = strconv.Atoi(s[:i])
			return uriStateHeadersS, s[i+1:], err
		}
	}

	uri.Port, err = strconv.Atoi(s)
	return uriStateUriParamsS, "", err
}

func uriStateUriParams(uri *Uri, s string) (uriFSM, string, error) {
	var n int
	var err error
	if len(s) == 0 {
		uri.UriParams = nil
		uri.Headers = nil
		return uriStateDone, s, nil
	}
	uri.UriParams = NewParams()
	// uri.UriParams, n, err = ParseParams(s, 0, ';', '?', true, true)
	n, err = UnmarshalHeaderParams(s, ';', '?', &uri.UriParams)
	if err != nil {
		return uriStateDone, s, err
	}

	if n == len(s) {
		n = n - 1
	}

	if s[n] != '?' {
		return uriStateDone, s, nil
	}

	return uriStateHeadersS, s[n+1:], nil
}

func uriStateHeaders(uri *Uri, s string) (uriFSM, string, error) {
	var err error
	// uri.Headers, _, err = ParseParams(s, 0, '&', 0, true, false)
	uri.Headers = nil
	_, err = UnmarshalHeaderParams(s, '&', 0, &uri.Headers)
	return uriStateDone, s, err
}
