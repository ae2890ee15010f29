package yamlnode

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func parse(t *testing.T, s string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(s), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Content[0]
}

func TestDescribe(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"{a: 1}", "a mapping"},
		{"[1]", "a list"},
		{"x y", `string "x y"`},
		{"'7'", `string "7"`},
		{"7", "integer 7"},
		{"1.5", "number 1.5"},
		{"true", "boolean true"},
		{"~", "null"},
		{"!!binary aGk=", `"aGk="`},
	} {
		if got := Describe(parse(t, tc.in)); got != tc.want {
			t.Errorf("Describe(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
	if got := Describe(&yaml.Node{Kind: yaml.AliasNode}); got != "an unsupported node" {
		t.Errorf("Describe(alias) = %s", got)
	}
}

func TestPaths(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{Join("", "spec"), "spec"},
		{Join("spec", "port"), "spec.port"},
		{Index("spec.uris", 2), "spec.uris[2]"},
		{Join(Index("uris", 0), "uri"), "uris[0].uri"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestNullsAndAliases(t *testing.T) {
	n := parse(t, "a: &x [1]\nb: *x\nc: ~\nd:\n")
	if got := Deref(n.Content[3]); got != n.Content[1] {
		t.Errorf("Deref(*x) = %v, want the anchored list", got)
	}
	for i, want := range []bool{false, false, true, true} {
		if got := IsNull(n.Content[2*i+1]); got != want {
			t.Errorf("IsNull(%s) = %v, want %v", n.Content[2*i].Value, got, want)
		}
	}
	if !IsNull(nil) || Line(nil) != 0 {
		t.Error("nil is not an absent node on line 0")
	}
	loop := parse(t, "a: &a [*a]").Content[1]
	if Deref(loop.Content[0]) != loop {
		t.Error("self alias not followed")
	}
}

func TestSyntaxError(t *testing.T) {
	for _, tc := range []struct {
		err  string
		line int
		msg  string
	}{
		{"yaml: line 3: did not find expected key", 3, "did not find expected key"},
		{"yaml: control characters are not allowed", 0, "control characters are not allowed"},
		{"EOF", 0, "EOF"},
	} {
		line, msg := SyntaxError(errors.New(tc.err))
		if line != tc.line || msg != tc.msg {
			t.Errorf("SyntaxError(%q) = %d, %q; want %d, %q", tc.err, line, msg, tc.line, tc.msg)
		}
	}
}

func TestDecodeAll(t *testing.T) {
	docs, err := DecodeAll([]byte("--- 1\n--- [2]\n"))
	if err != nil || len(docs) != 2 {
		t.Fatalf("got %d documents, %v", len(docs), err)
	}
	docs, err = DecodeAll([]byte("--- 1\n--- [2\n"))
	if err == nil || len(docs) != 1 {
		t.Fatalf("a broken second document: got %d documents, %v", len(docs), err)
	}
	var n yaml.Node
	if err := Decode(yaml.NewDecoder(strings.NewReader("")), &n); !errors.Is(err, io.EOF) {
		t.Errorf("Decode of nothing: %v, want EOF", err)
	}
}

// record is a Walker that writes what it is told, one line each.
type record struct {
	w   Walker
	log []string
}

func newRecord(nameAtMapping bool) *record {
	r := &record{}
	r.w = Walker{
		Error: func(n *yaml.Node, path, msg string) {
			r.log = append(r.log, fmt.Sprintf("error %d %s: %s", Line(n), path, msg))
		},
		Unknown: func(name *yaml.Node, path string) {
			r.log = append(r.log, fmt.Sprintf("unknown %d %s", name.Line, path))
		},
		Seen: func(path string, line int) {
			r.log = append(r.log, fmt.Sprintf("seen %d %s", line, path))
		},
		NameAtMapping: nameAtMapping,
	}
	return r
}

type uri struct {
	Host    string
	Port    int
	Enabled bool
	Tags    []string
}

func TestWalker(t *testing.T) {
	const file = `host: a
port: 5060
enabled: false
tags: [x, {y: 1}, ~]
extra: 1
host: b
? [k]
: v
`
	for _, tc := range []struct {
		nameAtMapping bool
		nameLine      int
	}{{false, 7}, {true, 1}} {
		r := newRecord(tc.nameAtMapping)
		u := uri{Enabled: true}
		r.w.Fields(parse(t, file), "spec", Fields{
			"host":    r.w.StrField(&u.Host),
			"port":    r.w.IntField(&u.Port),
			"enabled": r.w.BoolField(&u.Enabled),
			"tags":    r.w.StrListField(&u.Tags),
		})
		want := uri{Host: "a", Port: 5060, Enabled: false, Tags: []string{"x", "", ""}}
		if !reflect.DeepEqual(u, want) {
			t.Errorf("decoded %+v, want %+v", u, want)
		}
		wantLog := []string{
			"seen 1 spec.host",
			"seen 2 spec.port",
			"seen 3 spec.enabled",
			"seen 4 spec.tags",
			"seen 4 spec.tags[0]",
			"seen 4 spec.tags[1]",
			`error 4 spec.tags[1]: expected a string, got a mapping`,
			"seen 4 spec.tags[2]",
			"seen 5 spec.extra",
			"unknown 5 spec.extra",
			"error 6 spec.host: duplicate field (first at line 1)",
			fmt.Sprintf("error %d spec: field names must be strings", tc.nameLine),
		}
		if !reflect.DeepEqual(r.log, wantLog) {
			t.Errorf("NameAtMapping %v: reports\n%s\nwant\n%s", tc.nameAtMapping,
				strings.Join(r.log, "\n"), strings.Join(wantLog, "\n"))
		}
	}
}

func TestWrongTypes(t *testing.T) {
	r := newRecord(false)
	var s string
	var i int
	var b bool
	var l []string
	n := parse(t, "s: [1]\ni: '7'\nb: yes\nl: x\nm: 1\nbig: !!int 99999999999999999999\nnull: ~\n")
	r.w.Object(n, "", func(key string, v *yaml.Node, p string) bool {
		switch key {
		case "s":
			if r.w.Str(v, p, &s) {
				t.Error("Str set a list")
			}
		case "i":
			r.w.Int(v, p, &i)
		case "b":
			r.w.Bool(v, p, &b)
		case "l":
			r.w.StrList(v, p, &l)
		case "m":
			r.w.Fields(v, p, nil)
		case "big":
			r.w.Int(v, p, &i)
		case "null":
			r.w.Int(v, p, &i)
			r.w.Fields(v, p, nil)
			if r.w.Str(v, p, &s) {
				t.Error("Str set a null")
			}
		}
		return true
	})
	var errs []string
	for _, l := range r.log {
		if strings.HasPrefix(l, "error") {
			errs = append(errs, l)
		}
	}
	want := []string{
		"error 1 s: expected a string, got a list",
		`error 2 i: expected an integer, got string "7"`,
		`error 3 b: expected true or false, got string "yes"`,
		"error 4 l: expected a list, got string \"x\"",
		"error 5 m: expected a mapping, got integer 1",
		"error 6 big: expected an integer, got integer 99999999999999999999",
	}
	if !reflect.DeepEqual(errs, want) {
		t.Errorf("reports\n%s\nwant\n%s", strings.Join(errs, "\n"), strings.Join(want, "\n"))
	}
	if s != "" || i != 0 || b || l != nil {
		t.Errorf("wrong types set values: %q %d %v %q", s, i, b, l)
	}
}

func TestListField(t *testing.T) {
	r := newRecord(false)
	var uris []uri
	value := ListField(&r.w, &uris, uri{Enabled: true}, func(u *uri) Fields {
		return Fields{"host": r.w.StrField(&u.Host), "enabled": r.w.BoolField(&u.Enabled)}
	})
	value(parse(t, "[{host: a}, 7, {host: b, enabled: false}, ~]"), "uris")
	want := []uri{{Host: "a", Enabled: true}, {Enabled: true}, {Host: "b"}, {Enabled: true}}
	if !reflect.DeepEqual(uris, want) {
		t.Errorf("decoded %+v, want %+v", uris, want)
	}
	if len(r.log) == 0 || !strings.Contains(strings.Join(r.log, "\n"), "error 1 uris[1]: expected a mapping, got integer 7") {
		t.Errorf("reports %q, want uris[1] as not a mapping", r.log)
	}
}
