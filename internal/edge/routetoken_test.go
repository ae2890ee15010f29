package edge

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"sync"
	"testing"
)

// Pooled HMACs give every Call-ID the token a fresh HMAC gives, from
// concurrent goroutines too (a pooled HMAC is reset before use).
func TestRouteTokenPooled(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	rt := newRouteToken(secret)
	want := func(callID string) string {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(callID))
		return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:9])
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				id := string(rune('a'+g)) + "-call-" + string(rune('0'+i%10))
				if got := rt.make(id); got != want(id) {
					t.Errorf("token of %s = %s, want %s", id, got, want(id))
					return
				}
				if !rt.valid(id, want(id)) || rt.valid(id+"x", want(id)) {
					t.Errorf("valid(%s) wrong", id)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkRouteToken(b *testing.B) {
	rt := newRouteToken([]byte("0123456789abcdef0123456789abcdef"))
	b.ReportAllocs()
	for range b.N {
		_ = rt.make("a84b4c76e66710@pc33.atlanta.com")
	}
}
