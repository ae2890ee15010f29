package api

import (
	"bytes"
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/routr-go/routr/internal/apipb/domainspb/domainspbconnect"
)

// FuzzRequests sends arbitrary bodies, as Connect JSON, Connect protobuf
// and gRPC, to every procedure with a valid key: whatever the body, the
// answer is a client error or success, never a crash or an internal error.
func FuzzRequests(f *testing.F) {
	fx := newFixture(f)
	seeds := []string{
		`{"name":"d","domainUri":"fuzz.test"}`,
		`{"ref":"x","name":"n","extended":{"a":[1,{"b":null}]}}`,
		`{"name":"a","username":"1001","domainRef":"d","privacy":"PRIVATE","maxContacts":-1}`,
		`{"name":"t","inboundUri":"t.test","uris":[{"host":"10.0.0.1","port":70000,"transport":"XX"}]}`,
		`{"pageSize":1,"pageToken":"zz"}`,
		`{"fieldName":"username","fieldValue":"1001"}`,
		`{"telUrl":"tel:+1","extraHeaders":[{"name":"","value":"\u0000"}]}`,
		"\x0a\x01x\x12\x09fuzz.test",
		"",
	}
	for i, s := range seeds {
		for mode := range 3 {
			f.Add(uint8(i*5), uint8(mode), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, proc, mode uint8, body []byte) {
		p := procedures[int(proc)%len(procedures)]
		var req *http.Request
		switch mode % 3 {
		case 0:
			req = httptest.NewRequest(http.MethodPost, p, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
		case 1:
			req = httptest.NewRequest(http.MethodPost, p, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/proto")
		case 2:
			frame := make([]byte, 5, 5+len(body))
			binary.BigEndian.PutUint32(frame[1:], uint32(len(body)))
			req = httptest.NewRequest(http.MethodPost, p, bytes.NewReader(append(frame, body...)))
			req.Header.Set("Content-Type", "application/grpc")
			req.Header.Set("Te", "trailers")
			req.ProtoMajor, req.ProtoMinor = 2, 0
		}
		req.Header.Set("X-Api-Key", fx.key)
		rec := httptest.NewRecorder()
		fx.h.ServeHTTP(rec, req)
		res := rec.Result()
		if res.StatusCode >= 500 {
			t.Fatalf("%s mode %d: HTTP %d: %s", p, mode%3, res.StatusCode, rec.Body.String())
		}
		for _, h := range []http.Header{res.Header, res.Trailer} {
			if s := h.Get("Grpc-Status"); s == "13" || s == "2" {
				t.Fatalf("%s gRPC status %s: %s", p, s, h.Get("Grpc-Message"))
			}
		}
	})
}

// TestFuzzHarnessReachesHandlers checks that the harness's requests are
// decoded and answered by the services (not refused before them), so
// that the fuzzer exercises the decoding it is meant to.
func TestFuzzHarnessReachesHandlers(t *testing.T) {
	fx := newFixture(t)
	for i, tc := range []struct {
		ct   string
		body []byte
	}{
		{"application/json", []byte(`{"name":"d","domainUri":"h1.test"}`)},
		{"application/proto", []byte("\x0a\x01x\x12\x07h2.test")},
		{"application/grpc", append([]byte{0, 0, 0, 0, 12}, "\x0a\x01x\x12\x07h3.test"...)},
	} {
		req := httptest.NewRequest(http.MethodPost, domainspbconnect.DomainsCreateProcedure, bytes.NewReader(tc.body))
		req.Header.Set("Content-Type", tc.ct)
		req.Header.Set("X-Api-Key", fx.key)
		if tc.ct == "application/grpc" {
			req.ProtoMajor = 2
		}
		rec := httptest.NewRecorder()
		fx.h.ServeHTTP(rec, req)
		res := rec.Result()
		if res.StatusCode != 200 || res.Trailer.Get("Grpc-Status") != "" && res.Trailer.Get("Grpc-Status") != "0" {
			t.Errorf("case %d: HTTP %d %v %v: %s", i, res.StatusCode, res.Header, res.Trailer, rec.Body.String())
		}
	}
	recs, _, err := fx.st.List(t.Context(), "Domain", 10, "")
	if err != nil || len(recs) != 3 {
		t.Fatalf("%d domains, %v; want 3", len(recs), err)
	}
}

// FuzzAPIKeyHeaders: any authorization or x-api-key value is either
// accepted as the valid key or refused with Unauthenticated, before the
// body is read; never a crash or another answer.
func FuzzAPIKeyHeaders(f *testing.F) {
	fx := newFixture(f)
	for _, s := range []string{"", "Bearer ", "Basic Og==", "Basic " + basic("a", "b"), "Bearer rk_0123456789abcdef_", "bearer  x ", "Basic\x00"} {
		f.Add(s, "")
		f.Add("", s)
	}
	f.Add("Bearer "+fx.key, "")
	f.Fuzz(func(t *testing.T, authz, xkey string) {
		req := httptest.NewRequest(http.MethodPost, domainspbconnect.DomainsListProcedure, bytes.NewReader([]byte("{}")))
		req.Header.Set("Content-Type", "application/json")
		req.Header["Authorization"] = []string{authz}
		req.Header["X-Api-Key"] = []string{xkey}
		rec := httptest.NewRecorder()
		fx.h.ServeHTTP(rec, req)
		// Only the one valid key, however it was sent, gets through.
		valid := apiKey(req.Header) == fx.key
		switch {
		case rec.Code == http.StatusOK && !valid:
			t.Fatalf("accepted authorization %q x-api-key %q", authz, xkey)
		case rec.Code != http.StatusOK && rec.Code != http.StatusUnauthorized:
			t.Fatalf("HTTP %d for authorization %q x-api-key %q: %s", rec.Code, authz, xkey, rec.Body.String())
		}
	})
}
