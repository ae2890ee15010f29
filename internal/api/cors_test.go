package api

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/routr-go/routr/internal/apipb/domainspb/domainspbconnect"
)

func TestCORS(t *testing.T) {
	f := newFixture(t)
	h := New(Options{Store: f.st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), CORSOrigins: []string{"https://admin.example.com"}}).Handler()
	do := func(method, origin string, hdr map[string]string, body string) *http.Response {
		req := httptest.NewRequest(method, domainspbconnect.DomainsListProcedure, strings.NewReader(body))
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Result()
	}
	// Preflight from an allowed origin: answered without a key.
	res := do(http.MethodOptions, "https://admin.example.com", map[string]string{"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-api-key,x-grpc-web"}, "")
	if res.StatusCode != http.StatusNoContent || res.Header.Get("Access-Control-Allow-Origin") != "https://admin.example.com" || !strings.Contains(res.Header.Get("Access-Control-Allow-Headers"), "x-api-key") {
		t.Fatalf("preflight: %d %v", res.StatusCode, res.Header)
	}
	// From another origin: no CORS headers, and the preflight reaches the
	// key check like any request.
	res = do(http.MethodOptions, "https://evil.example.com", map[string]string{"Access-Control-Request-Method": "POST"}, "")
	if res.Header.Get("Access-Control-Allow-Origin") != "" || res.StatusCode == http.StatusNoContent {
		t.Fatalf("other origin: %d %v", res.StatusCode, res.Header)
	}
	// The call itself still needs a key, and carries the CORS headers.
	res = do(http.MethodPost, "https://admin.example.com", map[string]string{"Content-Type": "application/json"}, "{}")
	if res.StatusCode != http.StatusUnauthorized || res.Header.Get("Access-Control-Allow-Origin") == "" {
		t.Fatalf("call without key: %d %v", res.StatusCode, res.Header)
	}
	res = do(http.MethodPost, "https://admin.example.com", map[string]string{"Content-Type": "application/json", "X-Api-Key": f.key}, "{}")
	if res.StatusCode != http.StatusOK || !strings.Contains(res.Header.Get("Access-Control-Expose-Headers"), "Grpc-Status") {
		t.Fatalf("call with key: %d %v", res.StatusCode, res.Header)
	}
	if _, err := LoadConfig(func(k string) string { return map[string]string{"API_CORS_ORIGINS": "admin.example.com"}[k] }); err == nil {
		t.Error("an origin without a scheme was accepted")
	}
	c, err := LoadConfig(func(k string) string { return map[string]string{"API_CORS_ORIGINS": " https://a.example/ , *"}[k] })
	if err != nil || len(c.CORSOrigins) != 2 || c.CORSOrigins[0] != "https://a.example" {
		t.Fatalf("%v %v", c.CORSOrigins, err)
	}
}
