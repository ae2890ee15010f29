package store

import (
	"strings"
	"testing"
)

// FuzzParseAPIKey reads arbitrary header values as API keys: never a
// panic, and only well-formed keys are accepted, which re-encode to
// themselves.
func FuzzParseAPIKey(f *testing.F) {
	f.Add("rk_0123456789abcdef_" + strings.Repeat("A", 43))
	f.Add("rk_0123456789abcdef_")
	f.Add("rk___")
	f.Add("Bearer rk_x")
	f.Add("rk_0123456789ABCDEF_" + strings.Repeat("-", 43))
	f.Fuzz(func(t *testing.T, s string) {
		id, secret, ok := parseAPIKey(s)
		if !ok {
			return
		}
		if len(id) != 16 || len(secret) != 32 {
			t.Fatalf("accepted %q as id %q, %d-byte secret", s, id, len(secret))
		}
	})
}

// FuzzPageToken decodes arbitrary page tokens: never a panic, never a
// negative position, and accepted tokens round-trip.
func FuzzPageToken(f *testing.F) {
	f.Add(encodeToken(0))
	f.Add(encodeToken(1 << 62))
	f.Add("")
	f.Add("czE")
	f.Add("cy0x")
	f.Fuzz(func(t *testing.T, tok string) {
		v, err := decodeToken(tok)
		if err != nil {
			return
		}
		if v < 0 {
			t.Fatalf("token %q decoded to %d", tok, v)
		}
		if back, err := decodeToken(encodeToken(v)); err != nil || back != v {
			t.Fatalf("token for %d does not round-trip: %d %v", v, back, err)
		}
	})
}

// FuzzOpenSealed opens arbitrary stored secrets: never a panic, nothing
// opens without the key's own seal, and sealed values round-trip.
func FuzzOpenSealed(f *testing.F) {
	s, err := newSealer(testKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(s.seal("1234", credentialsAD("c")), "1234")
	f.Add([]byte{sealVersion}, "")
	f.Add([]byte{}, "x")
	f.Fuzz(func(t *testing.T, sealed []byte, plain string) {
		if pt, err := s.open(sealed, credentialsAD("c")); err == nil {
			// Only a seal made with the key opens; re-sealing what opened
			// must open to the same text.
			if back, err := s.open(s.seal(pt, credentialsAD("c")), credentialsAD("c")); err != nil || back != pt {
				t.Fatalf("re-seal of %q: %q %v", pt, back, err)
			}
		}
		back, err := s.open(s.seal(plain, credentialsAD("r")), credentialsAD("r"))
		if err != nil || back != plain {
			t.Fatalf("seal/open %q: %q %v", plain, back, err)
		}
		if _, err := s.open(s.seal(plain, credentialsAD("r")), credentialsAD("other")); err == nil {
			t.Fatal("opened under another ref")
		}
	})
}
