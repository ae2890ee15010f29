package resources

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary bytes, as YAML and as JSON, through Parse and
// Build. Neither may panic, every problem must name its file, and a Set
// that builds must answer lookups.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("../../config/resources/*")
	files = append(files, "testdata/base.yaml")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, filepath.Ext(name) == ".json")
	}
	for _, s := range []string{
		"- kind: Agent\n  ref: [\n",
		"- kind: Agent\n\tref: x\n",
		`[{"kind": "Agent",}]`,
		`[{"kind": "Peer", "ref": "p", "spec": {"aor": "sip:\/x", "username": "\ud83d"}}]`,
		"- &a {kind: Domain, ref: d, spec: {context: {domainUri: *a}}}\n",
		"a: &a [*a]\n",
		"- kind: Trunk\n  ref: t\n  spec: {outbound: {uris: [{uri: {host: h, port: 99999999999999999999}}]}}\n",
		"- kind: AccessControlList\n  ref: a\n  spec: {accessControlList: {allow: [1.2.3.4/255.255.0.0, '::/0']}}\n",
		"--- 1\n--- [2]\n--- {kind: x}\n",
		"- kind: Domain\n  ref: d\n  spec: {context: {egressPolicies: [{rule: '(((', numberRef: d}]}}\n",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, asJSON bool) {
		name := "fuzz.yaml"
		if asJSON {
			name = "fuzz.json"
		}
		rs, err := Parse(name, data)
		checkProblems(t, name, err)
		s, err := Build(rs)
		checkProblems(t, name, err)
		if err != nil {
			return
		}
		for _, r := range s.All() {
			b := r.Meta()
			if s.Resource(b.Ref) != r {
				t.Errorf("Resource(%q) is not the resource", b.Ref)
			}
		}
		for _, a := range s.ACLs() {
			a.Allows(netip.MustParseAddr("127.0.0.1"))
		}
		for _, d := range s.Domains() {
			if s.DomainByURI(d.DomainURI) != d {
				t.Errorf("DomainByURI(%q) is not domain %q", d.DomainURI, d.Ref)
			}
		}
	})
}

func checkProblems(t *testing.T, name string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	ve, ok := err.(*ValidationError)
	if !ok {
		t.Fatalf("error %T, want *ValidationError", err)
	}
	if len(ve.Problems) == 0 || ve.Error() == "" {
		t.Fatal("empty ValidationError")
	}
	for _, p := range ve.Problems {
		if p.File != name || p.Msg == "" {
			t.Errorf("problem without file or message: %+v", p)
		}
	}
}
