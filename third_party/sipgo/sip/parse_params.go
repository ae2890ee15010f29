package sip

import (
	"strings"
	"unicode"
)

const (
	paramsStateNone = iota
	paramsStateKey
	paramsStateEqual
	paramsStateValue
	paramsStateQuote
)

func UnmarshalHeaderParams(s string, seperator rune, ending rune, p *HeaderParams) (n int, err error) {
	var start, sep, quote int = 0, 0, -1
	state := paramsStateKey

	s = strings.TrimLeftFunc(s, unicode.IsSpace) // Remove trailing spaces
	n = len(s)
	// routr-go patch: an empty p gets room for every param when the first
	// is added (one allocation, not one per doubling: a Via's branch;rport
	// took two, branch;rport;received three). Separators are counted up to
	// the ending; one inside a quoted value only makes room for one more.
	reserve := 0
	if cap(*p) == 0 {
		end := s
		if i := strings.IndexRune(s, ending); i >= 0 {
			end = s[:i]
		}
		reserve = strings.Count(end, string(seperator)) + 1
	}
	for i, c := range s {
		if c == ending {
			n = i
			break
		}

		switch state {
		case paramsStateKey:
			sep = 0
			start = i
			state = paramsStateEqual

		case paramsStateEqual:
			if c == seperator {
				// Add support for empty values
				addParamReserve(p, reserve, s[start:i], "")
				state = paramsStateKey
				continue
			}

			if c != '=' {
				continue
			}

			sep = i
			state = paramsStateValue

		case paramsStateValue:
			switch c {
			case '"':
				state = paramsStateQuote
				quote = i
			case seperator:
				addParamReserve(p, reserve, s[start:sep], s[sep+1:i])
				start = sep + 1
				state = paramsStateKey
			}
		case paramsStateQuote:
			if c != '"' {
				//End quoute
				continue
			}
			addParamReserve(p, reserve, s[start:], s[quote+1:i])
			state = paramsStateKey
		}
	}

	// Do the last one
	if sep > 0 && n >= 0 && (start < sep) {
		addParamReserve(p, reserve, s[start:sep], s[sep+1:n])
	}
	// No seperator
	if sep == 0 && start < n && n >= 0 {
		addParamReserve(p, reserve, s[start:], "")
	}

	return n, nil
}

// routr-go patch: addParamReserve adds to p, first making it room for n
// params if it has none (so that p stays nil when nothing is added).
func addParamReserve(p *HeaderParams, n int, key, val string) {
	if cap(*p) == 0 && n > 1 {
		*p = make(HeaderParams, 0, n)
	}
	p.Add(key, val)
}
