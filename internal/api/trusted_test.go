package api

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/routr-go/routr/internal/apipb/domainspb/domainspbconnect"
)

// TestTrustedNetworks: a call without a key is accepted only from
// API_TRUSTED_NETWORKS, audited as such; a wrong key is refused even
// from there.
func TestTrustedNetworks(t *testing.T) {
	f := newFixture(t)
	var log bytes.Buffer
	h := New(Options{Store: f.st, Logger: slog.New(slog.NewJSONHandler(&log, nil)), TrustedNetworks: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}).Handler()
	call := func(from, key, body string) int {
		req := httptest.NewRequest(http.MethodPost, domainspbconnect.DomainsCreateProcedure, strings.NewReader(body))
		req.RemoteAddr = from
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("X-Api-Key", key)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	if c := call("10.1.2.3:4000", "", `{"name":"t","domainUri":"trusted.test"}`); c != http.StatusOK {
		t.Fatalf("trusted, no key: %d", c)
	}
	if c := call("[::ffff:10.1.2.3]:4000", "wrong", `{"name":"t","domainUri":"wrongkey.test"}`); c != http.StatusUnauthorized {
		t.Fatalf("trusted, wrong key: %d", c)
	}
	if c := call("10.2.0.1:4000", "", `{"name":"t","domainUri":"untrusted.test"}`); c != http.StatusUnauthorized {
		t.Fatalf("untrusted, no key: %d", c)
	}
	recs, _, err := f.st.List(t.Context(), "Domain", 10, "")
	if err != nil || len(recs) != 1 {
		t.Fatalf("%d domains (%v), want 1", len(recs), err)
	}
	if !strings.Contains(log.String(), `"trusted_network":true`) {
		t.Errorf("audit does not say the call came from a trusted network:\n%s", log.String())
	}
	for _, bad := range []string{"10.0.0.0/33", "host", "10.0.0.1/8/2"} {
		if _, err := LoadConfig(func(k string) string { return map[string]string{"API_TRUSTED_NETWORKS": bad}[k] }); err == nil || !strings.Contains(err.Error(), "API_TRUSTED_NETWORKS") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	c, err := LoadConfig(func(k string) string {
		return map[string]string{"API_TRUSTED_NETWORKS": "127.0.0.1, ::1, 10.0.0.0/8"}[k]
	})
	if err != nil || len(c.TrustedNetworks) != 3 || c.TrustedNetworks[0].Bits() != 32 {
		t.Fatalf("%v %v", c.TrustedNetworks, err)
	}
}
