package routing

import "testing"

func TestE164(t *testing.T) {
	cases := []struct {
		in           string
		mobilePrefix bool
		want         string
		ok           bool
	}{
		{"17066041487", false, "+17066041487", true},
		{"+17066041487", false, "+17066041487", true},
		{"4930123456", false, "+4930123456", true},
		{"1001", false, "1001", false},
		{"voice", false, "voice", false},
		{"", false, "", false},
		{"+", false, "+", false},
		{"999123456789", false, "999123456789", false}, // no country 999
		{"491701234567", true, "+491701234567", true},  // German mobile
		{"4930123456", true, "4930123456", false},      // Berlin landline
	}
	for _, c := range cases {
		got, ok := E164(c.in, c.mobilePrefix)
		if got != c.want || ok != c.ok {
			t.Errorf("E164(%q, %v) = %q %v, want %q %v", c.in, c.mobilePrefix, got, ok, c.want, c.ok)
		}
	}
}
