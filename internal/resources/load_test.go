package resources

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// LoadDir reads *.yaml, *.yml and *.json (any case) directly in the
// directory, in name order, and nothing else.
func TestLoadDirFiles(t *testing.T) {
	dir := t.TempDir()
	cred := func(ref string) string {
		return "- {apiVersion: v2, kind: Credentials, ref: " + ref + ", spec: {credentials: {username: u, password: p}}}\n"
	}
	files := map[string]string{
		"a.yaml":       cred("from-yaml"),
		"b.YML":        cred("from-yml"),
		"c.json":       `[{"apiVersion": "v2", "kind": "Credentials", "ref": "from-json", "spec": {"credentials": {"username": "u", "password": "p"}}}]`,
		".hidden.yaml": "not: [valid",
		"notes.txt":    "not: [valid",
		"sub/d.yaml":   "not: [valid",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, r := range s.All() {
		refs = append(refs, r.Meta().Ref)
	}
	if got := strings.Join(refs, ","); got != "from-yaml,from-yml,from-json" {
		t.Errorf("loaded %s", got)
	}
	if c := s.Credentials("from-json"); c.Source.File != filepath.Join(dir, "c.json") || c.Source.Line != 1 {
		t.Errorf("source = %+v", c.Source)
	}
}

func TestLoadDirErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	if _, err := LoadDir(missing); err == nil || err.Error() != "load resources from "+missing+": no such file or directory" {
		t.Errorf("missing dir: %v", err)
	}
	// Problems from several files, in file order, each once.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "agents.yaml"), []byte("- apiVersion: v2\n  kind: Agent\n  ref: a\n  spec: {username: '1001', domainRef: d, maxContacts: x}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "broken.json"), []byte("[\n{]"), 0o644)
	_, err := LoadDir(dir)
	agents, broken := filepath.Join(dir, "agents.yaml"), filepath.Join(dir, "broken.json")
	want := agents + `:4: Agent "a": spec.maxContacts: expected an integer, got string "x"
` + agents + `:4: Agent "a": spec.domainRef: references unknown Domain "d"
` + broken + `:2: invalid JSON: invalid character ']' looking for beginning of object key string`
	if err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
}
