package resources

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// plain returns r's exported content: Source and Parse's bookkeeping
// cleared, so that resources decoded from different inputs compare equal.
func plain(r Resource) Resource {
	r = clone(r)
	b := r.Meta()
	b.Source, b.notes = Source{}, nil
	return r
}

func exampleResources(t testing.TB) []Resource {
	files, _ := filepath.Glob("../../config/resources/*")
	files = append(files, "testdata/base.yaml")
	var all []Resource
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := Parse(name, data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		all = append(all, rs...)
	}
	return all
}

// Every example resource survives Marshal then Unmarshal unchanged, and
// encodes to the same bytes again.
func TestMarshalRoundTrip(t *testing.T) {
	rs := exampleResources(t)
	// Values Parse's defaults would hide if Marshal dropped them.
	rs = append(rs,
		&Agent{Base: Base{APIVersion: "v2", Kind: KindAgent, Ref: "a-off", Name: "Off", Extended: map[string]any{"k": []any{"v", 1.5, map[string]any{"x": true}}}},
			Username: "u", DomainRef: "d", Enabled: false, MaxContacts: -1, Expires: 60, Privacy: PrivacyPrivate},
		&Peer{Base: Base{APIVersion: "v2", Kind: KindPeer, Ref: "p-off"}, AOR: "backend:x", Username: "p", Enabled: false,
			BalancingAlgorithm: LeastSessions, WithSessionAffinity: true},
		&Trunk{Base: Base{APIVersion: "v2", Kind: KindTrunk, Ref: "t-u"}, InboundURI: "t.example.com",
			URIs: []TrunkURI{{Host: "h", Port: 5070, Transport: "tcp", Priority: 0, Weight: 5, Enabled: false}, {Host: "i", Enabled: true}}},
		&Credentials{Base: Base{APIVersion: "v2", Kind: KindCredentials, Ref: "c-q"}, Username: `we"ird\u`, Password: "p\u00e4ss \n/x"},
	)
	if len(rs) < 10 {
		t.Fatalf("only %d example resources", len(rs))
	}
	for _, r := range rs {
		data, err := Marshal(r)
		if err != nil {
			t.Fatalf("Marshal %s: %v", r.Meta().Ref, err)
		}
		back, err := Unmarshal(data)
		if err != nil {
			t.Fatalf("Unmarshal %s: %v\n%s", r.Meta().Ref, err, data)
		}
		if back.Meta().Source != (Source{}) {
			t.Errorf("%s: Unmarshal set Source %+v", r.Meta().Ref, back.Meta().Source)
		}
		if n := back.Meta().notes; n != nil && len(n.warnings) != 0 {
			t.Errorf("%s: warnings %v\n%s", r.Meta().Ref, n.warnings, data)
		}
		if got, want := plain(back), plain(r); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: round trip\n got %#v\nwant %#v\n%s", r.Meta().Ref, got, want, data)
		}
		again, err := Marshal(back)
		if err != nil || !bytes.Equal(again, data) {
			t.Errorf("%s: Marshal not stable: %s vs %s (%v)", r.Meta().Ref, again, data, err)
		}
	}
	// A whole set still builds after the round trip.
	var back []Resource
	files, _ := filepath.Glob("../../config/resources/*")
	for _, name := range files {
		data, _ := os.ReadFile(name)
		rs, _ := Parse(name, data)
		for _, r := range rs {
			data, _ := Marshal(r)
			b, err := Unmarshal(data)
			if err != nil {
				t.Fatal(err)
			}
			back = append(back, b)
		}
	}
	if _, err := Build(back); err != nil {
		t.Errorf("Build after round trip: %v", err)
	}
}

func TestMarshalRejects(t *testing.T) {
	if _, err := Marshal(nil); err == nil {
		t.Error("Marshal(nil) succeeded")
	}
	for _, in := range []string{``, `[]`, `[{"kind":"Agent","ref":"a"},{"kind":"Agent","ref":"b"}]`, `{"kind":"Nope"}`, `{"kind":"Agent","spec":{"enabled":"x"}}`} {
		if r, err := Unmarshal([]byte(in)); err == nil {
			t.Errorf("Unmarshal(%s) = %v, want error", in, r)
		}
	}
}

// FuzzUnmarshal decodes arbitrary stored bodies: never a panic, and
// whatever decodes re-encodes to a body that decodes to the same resource.
func FuzzUnmarshal(f *testing.F) {
	for _, r := range exampleResources(f) {
		data, err := Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"kind":"Trunk","ref":"t","spec":{"outbound":{"uris":[{"uri":{"port":1e99}}]}}}`))
	f.Add([]byte(`{"kind":"Agent","extended":{"a":{"b":[null,{}]}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Unmarshal(data)
		if err != nil {
			return
		}
		enc, err := Marshal(r)
		if err != nil {
			t.Fatalf("Marshal of decoded %q: %v", data, err)
		}
		back, err := Unmarshal(enc)
		if err != nil {
			t.Fatalf("re-decode of %s: %v", enc, err)
		}
		if got, want := plain(back), plain(r); !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip of %q\n got %#v\nwant %#v", data, got, want)
		}
	})
}
