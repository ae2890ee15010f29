package resources

import (
	"strings"
	"testing"
	"unsafe"
)

// A Set's strings are its own, packed, and a resolved reference shares
// its target's Ref: what keeps 100,000 agents in ~58 MB.
func TestBuildPacksStrings(t *testing.T) {
	fsys := benchFiles(3000)
	var rs []Resource
	for _, name := range []string{"domains.yaml", "agents.yaml", "credentials.yaml"} {
		got, err := Parse(name, fsys[name].Data)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, got...)
	}
	s, err := Build(rs)
	if err != nil {
		t.Fatal(err)
	}
	parsed := map[*byte]bool{}
	for _, r := range rs {
		parsed[unsafe.StringData(r.Meta().Ref)] = true
	}
	blocks := map[uintptr]bool{}
	for _, a := range s.Agents() {
		if parsed[unsafe.StringData(a.Ref)] {
			t.Fatalf("agent %s: Ref shares Parse's string", a.Ref)
		}
		if unsafe.StringData(a.CredentialsRef) != unsafe.StringData(a.Credentials.Ref) ||
			unsafe.StringData(a.DomainRef) != unsafe.StringData(a.Domain.Ref) {
			t.Fatalf("agent %s: references not shared with their targets' Ref", a.Ref)
		}
		if a.APIVersion != "v2beta1" || unsafe.StringData(a.APIVersion) != unsafe.StringData("v2beta1") {
			t.Fatalf("agent %s: apiVersion %q not interned", a.Ref, a.APIVersion)
		}
		blocks[blockOf(a.Username)] = true
	}
	// 3,000 agents with 7-byte usernames among their other strings: a
	// few blocks, not an allocation per string.
	if n := len(blocks); n == 0 || n > 10 {
		t.Errorf("agents' usernames in %d blocks", n)
	}
	if a := s.Agent("domain-bench", "u000042"); a == nil || a.Credentials.Username != "u000042" || !strings.HasPrefix(a.Name, "Bench agent") {
		t.Errorf("Agent(u000042) = %+v", a)
	}
}

// blockOf returns the 32 KiB-aligned window holding s: the strings of one
// packed block lie in one or two windows.
func blockOf(s string) uintptr {
	return uintptr(unsafe.Pointer(unsafe.StringData(s))) &^ (packBlock - 1)
}
