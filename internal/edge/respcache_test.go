package edge

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func newTestCache(t *testing.T, ttl time.Duration, entries, bytes int) *responseCache {
	t.Helper()
	c, err := newResponseCache(ttl, entries, bytes, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestResponseCacheExpiresAfterTTL(t *testing.T) {
	c := newTestCache(t, 32*time.Second, 0, 0)
	dest := netip.MustParseAddrPort("127.0.0.1:5060")
	t0 := time.Unix(1000, 0)
	c.put("a", []byte("SIP/2.0 200 OK"), dest, t0)
	if _, d, ok := c.get(nil, "a", t0.Add(31*time.Second)); !ok || d != dest {
		t.Fatalf("entry gone before its Timer J: ok=%v dest=%v", ok, d)
	}
	if _, _, ok := c.get(nil, "a", t0.Add(32*time.Second)); ok {
		t.Fatal("entry answered after its Timer J")
	}
	// The next put sweeps it out.
	c.put("b", []byte("x"), dest, t0.Add(33*time.Second))
	if n, b := c.size(); n != 1 || b != 2 {
		t.Fatalf("size = %d entries, %d bytes; want 1, 2 (key and response)", n, b)
	}
	if v := counterValue(c.evictTTL); v != 1 {
		t.Fatalf("expired evictions = %v, want 1", v)
	}
}

func TestResponseCacheBoundedByEntriesAndBytes(t *testing.T) {
	dest := netip.MustParseAddrPort("127.0.0.1:5060")
	now := time.Unix(1000, 0)
	c := newTestCache(t, time.Minute, 3, 1<<20)
	for i := range 5 {
		c.put(strconv.Itoa(i), []byte("resp"), dest, now)
	}
	if n, _ := c.size(); n != 3 {
		t.Fatalf("%d entries, want the bound 3", n)
	}
	for i, want := range []bool{false, false, true, true, true} {
		if _, _, ok := c.get(nil, strconv.Itoa(i), now); ok != want {
			t.Fatalf("entry %d kept=%v, want %v (oldest go first)", i, ok, want)
		}
	}
	if v := counterValue(c.evictFull); v != 2 {
		t.Fatalf("full evictions = %v, want 2", v)
	}

	c = newTestCache(t, time.Minute, 100, 10)
	c.put("a", []byte("12345"), dest, now)
	c.put("b", []byte("12345"), dest, now)
	c.put("c", []byte("123"), dest, now)
	if n, b := c.size(); n != 2 || b != 10 {
		t.Fatalf("size = %d entries, %d bytes; want 2, 10", n, b)
	}
	c.put("big", make([]byte, 11), dest, now) // larger than the whole cache: not kept
	if _, _, ok := c.get(nil, "big", now); ok {
		t.Fatal("a response larger than the bound was kept")
	}
}

func TestResponseCacheWrapsAround(t *testing.T) {
	dest4 := netip.MustParseAddrPort("127.0.0.1:5060")
	dest6 := netip.MustParseAddrPort("[::1]:5070")
	c := newTestCache(t, time.Hour, 0, 1000)
	now := time.Unix(1000, 0)
	resp := func(i int) []byte { return []byte(strings.Repeat(strconv.Itoa(i%10), 37+i%50)) }
	for i := range 10000 {
		d := dest4
		if i%2 == 1 {
			d = dest6
		}
		c.put("key-"+strconv.Itoa(i), resp(i), d, now)
		// The newest few are always there, byte for byte, whichever
		// way they straddle the end of the arena.
		for j := max(0, i-3); j <= i; j++ {
			got, d, ok := c.get(nil, "key-"+strconv.Itoa(j), now)
			if !ok || string(got) != string(resp(j)) {
				t.Fatalf("after %d puts, entry %d: ok=%v %q", i+1, j, ok, got)
			}
			if want := map[bool]netip.AddrPort{false: dest4, true: dest6}[j%2 == 1]; d != want {
				t.Fatalf("entry %d destination %v, want %v", j, d, want)
			}
		}
		if _, b := c.size(); b > 1000 {
			t.Fatalf("%d bytes held, bound 1000", b)
		}
	}
	if _, _, ok := c.get(nil, "key-0", now); ok {
		t.Fatal("the oldest entry survived 10,000 newer ones in 1000 bytes")
	}
	// A key that differs but shares nothing else is not confused.
	if _, _, ok := c.get(nil, "key-9999x", now); ok {
		t.Fatal("a different key was answered")
	}
}

// A copy of an authenticated REGISTER that arrives after the response to
// it, and after a newer registration, is answered with the first 200 and
// not applied again.
func TestRetransmittedRegisterNotReapplied(t *testing.T) {
	te := startEdge(t)
	p := te.phone(t, "udp", "1001")
	req := p.NewRequest(sip.REGISTER, "sip:sip.local", "reg-late")
	req.AppendHeader(sip.NewHeader("Expires", "60"))
	if err := p.Send(req); err != nil {
		t.Fatal(err)
	}
	ch, err := p.Response(sip.REGISTER, 2*time.Second)
	if err != nil || ch.StatusCode != 401 {
		t.Fatalf("challenge: %v %v", ch, err)
	}
	authd, err := p.Authorize(req, ch, "")
	if err != nil {
		t.Fatal(err)
	}
	raw := []byte(authd.String())
	if err := p.SendRaw(raw); err != nil {
		t.Fatal(err)
	}
	first, err := p.Response(sip.REGISTER, 2*time.Second)
	if err != nil || first.StatusCode != 200 {
		t.Fatalf("authenticated REGISTER: %v %v", first, err)
	}
	// A newer registration with a different Call-ID.
	if res, err := p.Register(120, ""); err != nil || res.StatusCode != 200 {
		t.Fatalf("second registration: %v %v", res, err)
	}
	before := te.srv.respCache.hits
	hits := counterValue(before)
	if err := p.SendRaw(raw); err != nil {
		t.Fatal(err)
	}
	again, err := p.Response(sip.REGISTER, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if again.String() != first.String() {
		t.Fatalf("retransmission answered differently:\n%s\nfirst:\n%s", again, first)
	}
	if got := counterValue(before); got != hits+1 {
		t.Fatalf("cache hits %v -> %v, want +1", hits, got)
	}
	bs, err := te.loc.Lookup(context.Background(), "sip:1001@sip.local")
	if err != nil || len(bs) != 1 {
		t.Fatalf("bindings %+v %v", bs, err)
	}
	if bs[0].CallID != "reg-"+p.Tag {
		t.Fatalf("binding went back to the late copy's Call-ID: %+v", bs[0])
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// FuzzResponseCache puts and gets keys and responses taken from the
// input (the network supplies both: branch, sent-by, the request echoed in
// the response) in a small cache: whatever they are, the bounds hold and
// the newest entry reads back byte for byte.
func FuzzResponseCache(f *testing.F) {
	f.Add([]byte("z9hG4bK-1|127.0.0.1|5060|REGISTER\x00SIP/2.0 401 Unauthorized\r\n\r\n"), uint16(64))
	f.Add([]byte("a\x00b\x00\x00\x00c"), uint16(3))
	f.Fuzz(func(t *testing.T, data []byte, size uint16) {
		maxBytes := int(size%512) + 1
		c, err := newResponseCache(time.Minute, 8, maxBytes, prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		now := time.Unix(1000, 0)
		dest := netip.MustParseAddrPort("[2001:db8::1]:5060")
		parts := strings.Split(string(data), "\x00")
		for i := 0; i+1 < len(parts); i += 2 {
			// Unique keys: every put is a new transaction.
			key, resp := parts[i]+"#"+strconv.Itoa(i), []byte(parts[i+1])
			c.put(key, resp, dest, now)
			got, d, ok := c.get(nil, key, now)
			fits := len(key)+len(resp) <= maxBytes
			if ok != fits {
				t.Fatalf("key %q (%d+%d bytes in %d): kept=%v", key, len(key), len(resp), maxBytes, ok)
			}
			if ok && string(got) != string(resp) {
				t.Fatalf("read back %q, put %q", got, resp)
			}
			if ok && d != dest {
				t.Fatalf("destination %v", d)
			}
			if n, b := c.size(); n > 8 || b > maxBytes {
				t.Fatalf("%d entries, %d bytes: bounds 8, %d", n, b, maxBytes)
			}
		}
	})
}
