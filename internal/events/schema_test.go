package events

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// A validator for the subset of JSON Schema that docs/events uses: type,
// required, properties, additionalProperties (bool or schema),
// propertyNames.pattern, pattern, enum, minimum, maximum and format
// date-time. In strict mode an object schema without additionalProperties
// refuses unknown members, so the tests catch a field added to a payload
// but not to its schema.

type schema struct {
	Type                 string             `json:"type"`
	Required             []string           `json:"required"`
	Properties           map[string]*schema `json:"properties"`
	AdditionalProperties json.RawMessage    `json:"additionalProperties"`
	PropertyNames        *schema            `json:"propertyNames"`
	Pattern              string             `json:"pattern"`
	Format               string             `json:"format"`
	Enum                 []any              `json:"enum"`
	Minimum              *float64           `json:"minimum"`
	Maximum              *float64           `json:"maximum"`
	Description          string             `json:"description"`
}

var dateTime = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$`)

func (s *schema) validate(path string, v any, strict bool) []string {
	var errs []string
	fail := func(format string, a ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, a...)) }
	switch s.Type {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			fail("want object, got %T", v)
			return errs
		}
		for _, r := range s.Required {
			if _, ok := m[r]; !ok {
				fail("missing required %q", r)
			}
		}
		for k, val := range m {
			if s.PropertyNames != nil {
				errs = append(errs, s.PropertyNames.validate(path+".<name "+k+">", k, strict)...)
			}
			if p, ok := s.Properties[k]; ok {
				errs = append(errs, p.validate(path+"."+k, val, strict)...)
				continue
			}
			switch ap := strings.TrimSpace(string(s.AdditionalProperties)); {
			case ap == "true":
			case ap == "false" || ap == "" && strict:
				fail("member %q not in the schema", k)
			case ap == "":
			default:
				var sub schema
				if err := json.Unmarshal(s.AdditionalProperties, &sub); err != nil {
					fail("bad additionalProperties: %v", err)
					continue
				}
				errs = append(errs, sub.validate(path+"."+k, val, strict)...)
			}
		}
		return errs
	case "string", "":
		str, ok := v.(string)
		if !ok {
			if s.Type != "" {
				fail("want string, got %T", v)
				return errs
			}
			break
		}
		if s.Pattern != "" && !regexp.MustCompile(s.Pattern).MatchString(str) {
			fail("%q does not match %s", str, s.Pattern)
		}
		if s.Format == "date-time" {
			if !dateTime.MatchString(str) {
				fail("%q is not a date-time", str)
			} else if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
				fail("%q: %v", str, err)
			}
		}
	case "integer", "number":
		n, ok := v.(float64)
		if !ok || s.Type == "integer" && n != math.Trunc(n) {
			fail("want %s, got %v", s.Type, v)
			return errs
		}
		if s.Minimum != nil && n < *s.Minimum {
			fail("%v < minimum %v", n, *s.Minimum)
		}
		if s.Maximum != nil && n > *s.Maximum {
			fail("%v > maximum %v", n, *s.Maximum)
		}
	default:
		fail("validator does not know type %q", s.Type)
	}
	if s.Enum != nil && !slices.Contains(s.Enum, v) {
		fail("%v not in enum %v", v, s.Enum)
	}
	return errs
}

func loadSchema(t *testing.T, typ string) *schema {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "events", typ+".schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s schema
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%s schema: %v", typ, err)
	}
	return &s
}

// schemaSamples builds events of every type in their variants.
func schemaSamples() []Event {
	var out []Event
	for _, e := range fixtures() {
		out = append(out, e)
	}
	for _, code := range []int{0, 200, 404, 486, 487, 503, 603, 699} {
		out = append(out, CallEnded(CallEnd{CallID: "x", From: "sip:a@b", To: "tel:+1555", StartTime: t0, EndTime: ended, SIPCode: code}))
	}
	out = append(out,
		CallEnded(CallEnd{CallID: "x", From: "sip:[::1]", To: "sip:b@[2001:db8::1]:5060", StartTime: t0, EndTime: ended, HangupCause: CauseAllottedTimeout}),
		CallStarted(CallStart{CallID: "x", From: "sip:host.only", To: "sip:u@h", StartTime: t0}),
		EndpointUnregistered("sip:u@h", ReasonUnregister, t0),
		EndpointRegistered("sip:u@h", 0, nil, t0),
	)
	return out
}

func TestSchemas(t *testing.T) {
	schemas := map[string]*schema{}
	for _, typ := range Types() {
		schemas[typ] = loadSchema(t, typ)
		if schemas[typ].Type != "object" || schemas[typ].Description == "" {
			t.Errorf("%s schema: want a described object", typ)
		}
	}
	for _, e := range schemaSamples() {
		var v any
		if err := json.Unmarshal(e.Body, &v); err != nil {
			t.Fatal(err)
		}
		for _, err := range schemas[e.Type].validate(e.Type, v, true) {
			t.Errorf("%s\n  in %s", err, e.Body)
		}
	}
}

// TestSchemaValidatorRejects makes sure the validator is not vacuous.
func TestSchemaValidatorRejects(t *testing.T) {
	s := loadSchema(t, TypeCallEnded)
	for _, body := range []string{
		`{}`,
		`{"callId":"x","endTime":"2026-11-25 18:53:34","hangupCause":"NORMAL_CLEARING","extraHeaders":{},"from":"sip:a@b","to":"sip:a@b","sipCode":200,"startTime":"2026-11-25T18:53:34.120Z","duration":0}`,
		`{"callId":"x","endTime":"2026-11-25T18:53:34.120Z","hangupCause":"HUNG_UP","extraHeaders":{},"from":"sip:a@b","to":"sip:a@b","sipCode":200,"startTime":"2026-11-25T18:53:34.120Z","duration":0}`,
		`{"callId":"x","endTime":"2026-11-25T18:53:34.120Z","hangupCause":"NORMAL_CLEARING","extraHeaders":{"Via":"x"},"from":"sip:a@b","to":"sip:a@b","sipCode":200,"startTime":"2026-11-25T18:53:34.120Z","duration":0}`,
		`{"callId":"x","endTime":"2026-11-25T18:53:34.120Z","hangupCause":"NORMAL_CLEARING","extraHeaders":{},"from":"sip:a@b:5060","to":"sip:a@b","sipCode":200,"startTime":"2026-11-25T18:53:34.120Z","duration":1.5}`,
		`{"callId":"x","endTime":"2026-11-25T18:53:34.120Z","hangupCause":"NORMAL_CLEARING","extraHeaders":{},"from":"sip:a@b","to":"sip:a@b","sipCode":200,"startTime":"2026-11-25T18:53:34.120Z","duration":0,"extra":1}`,
	} {
		var v any
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatal(err)
		}
		if errs := s.validate("call.ended", v, true); len(errs) == 0 {
			t.Errorf("accepted %s", body)
		}
	}
}
