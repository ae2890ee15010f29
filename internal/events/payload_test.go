package events

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json")

var (
	t0       = time.Date(2026, 11, 25, 18, 53, 34, 120_456_789, time.UTC)
	answered = t0.Add(4*time.Second + 500*time.Millisecond)
	ended    = answered.Add(125*time.Second + 700*time.Millisecond)
)

// fixtures are one event of each type built from fixed inputs.
func fixtures() map[string]Event {
	hdrs := []Header{
		{Name: "Via", Value: "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds"},
		{Name: "X-Room-Id", Value: "room-42"},
		{Name: "x-lower", Value: "kept as written"},
		{Name: "X-Gateway-Auth", Value: "dXNlcjpwYXNz"},
		{Name: "X-Connect-Token", Value: "eyJhbGciOi..."},
		{Name: "X-Room-Id", Value: "room-43"},
		{Name: "Contact", Value: "<sip:alice@10.0.0.1:5060>"},
	}
	all := map[string]Event{
		TypeCallStarted: CallStarted(CallStart{
			CallID:       "a84b4c76e66710@pc33.atlanta.example.com",
			From:         `"Alice" <sip:alice@atlanta.example.com:5060;transport=udp>;tag=1928301774`,
			To:           "<sip:bob@biloxi.example.com>",
			StartTime:    t0,
			ExtraHeaders: hdrs,
			Metadata: map[string]any{
				"accessKeyId": "WO00000000000000000000000000000000",
				"callId":      "metadata must not overwrite a compat field",
				"extraHeaders": map[string]any{
					"X-Evil": "neither",
				},
				"apiSecret": "never published",
				"limits":    map[string]any{"maxCalls": 10, "password": "nested, never published", "tags": []any{"a", true, nil, 1.5}},
			},
		}),
		TypeCallAnswered: CallAnswered(CallAnswer{
			CallID: "a84b4c76e66710@pc33.atlanta.example.com", From: "sip:alice@atlanta.example.com",
			To: "sip:bob@biloxi.example.com", StartTime: t0, AnswerTime: answered,
		}),
		TypeCallEnded: CallEnded(CallEnd{
			CallID: "a84b4c76e66710@pc33.atlanta.example.com", From: "sip:alice@atlanta.example.com",
			To: "sip:bob@biloxi.example.com", StartTime: t0, AnswerTime: answered, EndTime: ended,
			HangupCause: CauseNormalClearing, SIPCode: 200,
			ExtraHeaders: []Header{{Name: "X-Hangup-By", Value: "callee"}},
		}),
		TypeEndpointRegistered: EndpointRegistered("<sip:1001@sip.local;transport=ws>", 3600,
			[]Header{{Name: "X-Device", Value: "softphone"}}, t0),
		TypeEndpointUnregistered: EndpointUnregistered("sip:1001@sip.local", ReasonExpired, t0),
	}
	for typ, e := range all {
		e.ID = "0196b7c2-1d2f-7a3e-8c4d-5e6f7a8b9c0d"
		all[typ] = e
	}
	return all
}

func TestGolden(t *testing.T) {
	for typ, e := range fixtures() {
		t.Run(typ, func(t *testing.T) {
			if e.Type != typ {
				t.Errorf("Type = %q", e.Type)
			}
			path := filepath.Join("testdata", typ+".golden.json")
			got := append(bytes.Clone(e.Body), '\n')
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("body differs from %s:\n got %s\nwant %s", path, got, want)
			}
		})
	}
}

func decode(t *testing.T, e Event) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(e.Body))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("%s: %v: %s", e.Type, err, e.Body)
	}
	return m
}

// TestCompatFields checks, field by field, what a Routr v2 consumer reads.
func TestCompatFields(t *testing.T) {
	f := fixtures()

	started := decode(t, f[TypeCallStarted])
	for k, want := range map[string]any{
		"callId":      "a84b4c76e66710@pc33.atlanta.example.com",
		"from":        "sip:alice@atlanta.example.com",
		"to":          "sip:bob@biloxi.example.com",
		"startTime":   "2026-11-25T18:53:34.120Z",
		"accessKeyId": "WO00000000000000000000000000000000",
	} {
		if started[k] != want {
			t.Errorf("call.started %s = %v, want %v", k, started[k], want)
		}
	}
	xh, _ := started["extraHeaders"].(map[string]any)
	if len(xh) != 2 || xh["X-Room-Id"] != "room-43" || xh["x-lower"] != "kept as written" {
		t.Errorf("call.started extraHeaders = %v, want X-Room-Id (last value) and x-lower only", xh)
	}
	if _, ok := started["apiSecret"]; ok {
		t.Error("credential-like metadata key published")
	}
	if strings.Contains(string(f[TypeCallStarted].Body), "never published") || strings.Contains(string(f[TypeCallStarted].Body), "dXNlcjpwYXNz") {
		t.Errorf("a credential leaked: %s", f[TypeCallStarted].Body)
	}

	ended := decode(t, f[TypeCallEnded])
	for k, want := range map[string]any{
		"callId":      "a84b4c76e66710@pc33.atlanta.example.com",
		"endTime":     "2026-11-25T18:55:44.320Z",
		"hangupCause": "NORMAL_CLEARING",
		"answerTime":  "2026-11-25T18:53:38.620Z",
		"sipCode":     json.Number("200"),
		"duration":    json.Number("125"),
	} {
		if ended[k] != want {
			t.Errorf("call.ended %s = %v, want %v", k, ended[k], want)
		}
	}

	reg := decode(t, f[TypeEndpointRegistered])
	if reg["aor"] != "sip:1001@sip.local" || reg["registeredAt"] != "2026-11-25T18:53:34.120Z" || reg["expires"] != json.Number("3600") {
		t.Errorf("endpoint.registered = %v", reg)
	}

	// {} when there are no X- headers, never null or absent.
	for _, e := range []Event{
		CallStarted(CallStart{CallID: "c", From: "sip:a@b", To: "sip:c@d", StartTime: t0}),
		CallEnded(CallEnd{CallID: "c", EndTime: t0, SIPCode: 486, ExtraHeaders: []Header{{Name: "Via", Value: "x"}}}),
		EndpointRegistered("sip:a@b", 60, nil, t0),
	} {
		if !bytes.Contains(e.Body, []byte(`"extraHeaders":{}`)) {
			t.Errorf("%s without X- headers: %s", e.Type, e.Body)
		}
	}
}

func TestTimeFormat(t *testing.T) {
	cases := map[time.Time]string{
		t0: "2026-11-25T18:53:34.120Z",
		time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC):                             "2026-01-02T03:04:05.000Z",
		time.Date(2026, 1, 2, 3, 4, 5, 999_999_999, time.UTC):                   "2026-01-02T03:04:05.999Z",
		time.Date(2026, 1, 2, 1, 4, 5, 7_000_000, time.FixedZone("X", -2*3600)): "2026-01-02T03:04:05.007Z",
		time.Date(12345, 1, 2, 1, 4, 5, 7_000_000, time.UTC):                    "12345-01-02T01:04:05.007Z",
	}
	for in, want := range cases {
		if got := FormatTime(in); got != want {
			t.Errorf("FormatTime(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestNormalizeURI(t *testing.T) {
	cases := map[string]string{
		"sip:alice@atlanta.example.com":                         "sip:alice@atlanta.example.com",
		"sip:alice@atlanta.example.com:5060":                    "sip:alice@atlanta.example.com",
		"sip:alice@atlanta.example.com;transport=tcp":           "sip:alice@atlanta.example.com",
		"sip:alice@atlanta.example.com:5060;transport=tcp?x=y":  "sip:alice@atlanta.example.com",
		`"Alice" <sip:alice@atlanta.example.com:5060>;tag=1234`: "sip:alice@atlanta.example.com",
		"<sips:alice@atlanta.example.com>":                      "sip:alice@atlanta.example.com",
		"SIP:Alice@Atlanta.example.com":                         "sip:Alice@Atlanta.example.com",
		"sip:alice:secret@atlanta.example.com":                  "sip:alice@atlanta.example.com",
		"sip:+15551234567;npdi@gw.example.com;user=phone":       "sip:+15551234567;npdi@gw.example.com",
		"sip:bob@[2001:db8::1]:5060":                            "sip:bob@[2001:db8::1]",
		"sip:[2001:db8::1]":                                     "sip:[2001:db8::1]",
		"sip:atlanta.example.com:5060":                          "sip:atlanta.example.com",
		"tel:+15551234567;phone-context=example.com":            "tel:+15551234567",
		"  <sip:a@b>  ":                                         "sip:a@b",
		"not a uri":                                             "not a uri",
		"":                                                      "",
	}
	for in, want := range cases {
		if got := NormalizeURI(in); got != want {
			t.Errorf("NormalizeURI(%q) = %q, want %q", in, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { NormalizeURI("sip:alice@atlanta.example.com") }); n != 0 {
		t.Errorf("NormalizeURI of a normal URI allocates %v times", n)
	}
}

func TestHangupCause(t *testing.T) {
	want := map[int]string{
		200: "NORMAL_CLEARING", 401: "CALL_REJECTED", 403: "CALL_REJECTED", 404: "UNALLOCATED",
		407: "CALL_REJECTED", 408: "NO_USER_RESPONSE", 420: "NO_ROUTE_DESTINATION", 480: "NO_ANSWER",
		483: "NO_ANSWER", 484: "INVALID_NUMBER_FORMAT", 485: "UNALLOCATED", 486: "USER_BUSY",
		487: "NORMAL_CLEARING", 488: "NOT_ACCEPTABLE_HERE", 503: "SERVICE_UNAVAILABLE",
		600: "USER_BUSY", 603: "CALL_REJECTED", 604: "UNALLOCATED",
	}
	for code := 0; code < 700; code++ {
		w, ok := want[code]
		if !ok {
			w = "UNKNOWN"
		}
		if got := HangupCause(code); got != w {
			t.Errorf("HangupCause(%d) = %q, want %q", code, got, w)
		}
	}
}

func TestIsCredentialName(t *testing.T) {
	for name, want := range map[string]bool{
		"X-Gateway-Auth": true, "X-Connect-Token": true, "x-api-key": true, "X-Api_Key": true,
		"password": true, "accessKeySecret": true, "Authorization": true, "X-Session-Cookie": true,
		"private_key": true, "accessKeyId": false, "X-Room-Id": false, "X-Edgeport-Ref": false,
		"X-Call-Direction": false, "name": false,
	} {
		if got := IsCredentialName(name); got != want {
			t.Errorf("IsCredentialName(%q) = %v, want %v", name, got, want)
		}
	}
	for _, w := range credentialWords {
		for _, name := range []string{w, "X-" + strings.ToUpper(w), "my_" + w + "_here"} {
			if !IsCredentialName(name) {
				t.Errorf("IsCredentialName(%q) = false", name)
			}
		}
	}
}

func TestMetadataValues(t *testing.T) {
	e := CallStarted(CallStart{CallID: "c", StartTime: t0, Metadata: map[string]any{
		"nan": math.NaN(), "inf": math.Inf(1), "small": 1e-7, "big": 1e21, "f": 0.5, "i": int64(-3),
		"u": uint8(7), "n": json.Number("12.5"), "badnum": json.Number("1e"), "strs": []string{"a"},
		"m": map[string]string{"k": "v", "token": "x"}, "when": t0, "struct": struct{ A int }{1},
		"ch": make(chan int), "deep": nest(40),
	}})
	var m map[string]any
	if err := json.Unmarshal(e.Body, &m); err != nil {
		t.Fatalf("%v: %s", err, e.Body)
	}
	for k, want := range map[string]string{
		`"nan":null`: "", `"inf":null`: "", `"small":1e-7`: "", `"big":1e+21`: "", `"f":0.5`: "",
		`"i":-3`: "", `"u":7`: "", `"n":12.5`: "", `"badnum":"1e"`: "", `"strs":["a"]`: "",
		`"m":{"k":"v"}`: "", `"when":"2026-11-25T18:53:34.120Z"`: "", `"struct":{"A":1}`: "",
	} {
		_ = want
		if !bytes.Contains(e.Body, []byte(k)) {
			t.Errorf("body lacks %s: %s", k, e.Body)
		}
	}
}

func nest(n int) any {
	if n == 0 {
		return "bottom"
	}
	return map[string]any{"d": nest(n - 1)}
}

// TestAnyInputIsValidJSON feeds hostile strings everywhere a string goes.
func TestAnyInputIsValidJSON(t *testing.T) {
	for _, s := range []string{"\x00\x01\x1f\"\\", "\xff\xfe invalid", "\u2028\u2029", "é日本🎉", "</script>", "\xed\xa0\x80"} {
		for _, e := range buildAll(s) {
			checkValid(t, e, s)
		}
	}
}

func FuzzPayloads(f *testing.F) {
	f.Add("sip:alice@example.com", "X-Foo", "\x00bar\xff")
	f.Fuzz(func(t *testing.T, s, name, value string) {
		for _, e := range buildAll(s) {
			checkValid(t, e, s)
		}
		e := CallStarted(CallStart{CallID: s, ExtraHeaders: []Header{{Name: "X-" + name, Value: value}}, Metadata: map[string]any{name: value}})
		checkValid(t, e, s)
	})
}

func buildAll(s string) []Event {
	h := []Header{{Name: "X-" + s, Value: s}, {Name: "X-A", Value: s}}
	return []Event{
		CallStarted(CallStart{CallID: s, From: s, To: "sip:" + s + "@h", StartTime: t0, ExtraHeaders: h, Metadata: map[string]any{s: s, "k": []any{s}}}),
		CallAnswered(CallAnswer{CallID: s, From: s, To: s, StartTime: t0, AnswerTime: t0}),
		CallEnded(CallEnd{CallID: s, From: s, To: s, EndTime: t0, HangupCause: s, ExtraHeaders: h}),
		EndpointRegistered(s, -1, h, t0),
		EndpointUnregistered(s, s, t0),
	}
}

// checkValid checks that e is valid JSON and, for call events, that its
// callId decodes back to callID when that is valid UTF-8.
func checkValid(t *testing.T, e Event, callID string) {
	t.Helper()
	if !json.Valid(e.Body) || !utf8.Valid(e.Body) {
		t.Fatalf("%s with %q: invalid JSON %q", e.Type, callID, e.Body)
	}
	var m map[string]any
	if err := json.Unmarshal(e.Body, &m); err != nil {
		t.Fatalf("%s: %v", e.Type, err)
	}
	if id, ok := m["callId"]; ok && utf8.ValidString(callID) && id != callID {
		t.Fatalf("%s: callId round trip %q -> %q", e.Type, callID, id)
	}
}

func TestIDsAreUUIDv7(t *testing.T) {
	v7 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	before := time.Now().UnixMilli()
	for range 10000 {
		id := NewID()
		if seen[id] || !v7.MatchString(id) {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
	ms, err := strconv.ParseInt(strings.ReplaceAll(NewID()[:13], "-", ""), 16, 64)
	if err != nil || ms < before || ms > time.Now().UnixMilli() {
		t.Errorf("timestamp %d not within [%d, now]", ms, before)
	}
}
