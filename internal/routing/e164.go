package routing

import (
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// E164 rewrites a user part as an E.164 number ("+" and digits) when it
// reads as a phone number in international form, with or without its
// leading "+", as Routr does under ENFORCE_E164. With mobilePrefix the
// number must also be a mobile one (Routr's validateMobilePrefix);
// without it, a number of a possible length for its country is enough.
// Anything else comes back unchanged with ok false: extensions such as
// "1001", usernames, numbers that belong to no country.
func E164(user string, mobilePrefix bool) (out string, ok bool) {
	digits := strings.TrimPrefix(user, "+")
	if digits == "" || strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return user, false
	}
	n, err := phonenumbers.Parse("+"+digits, "")
	if err != nil {
		return user, false
	}
	if mobilePrefix {
		t := phonenumbers.GetNumberType(n)
		if !phonenumbers.IsValidNumber(n) || (t != phonenumbers.MOBILE && t != phonenumbers.FIXED_LINE_OR_MOBILE) {
			return user, false
		}
	} else if !phonenumbers.IsPossibleNumber(n) {
		return user, false
	}
	return phonenumbers.Format(n, phonenumbers.E164), true
}
