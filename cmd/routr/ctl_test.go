package main

import (
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/routr-go/routr/internal/apipb/aclpb"
	"github.com/routr-go/routr/internal/apipb/agentspb"
)

func TestRequestJSON(t *testing.T) {
	md := (&agentspb.CreateAgentRequest{}).ProtoReflect().Descriptor()
	got, err := requestJSON(md, []byte(`{"name":"from -d","expires":30}`), []string{"username=1001", "max_contacts=2", "enabled=true", "privacy=NONE", "name=Alice"})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(got, &m)
	want := map[string]any{"name": "Alice", "username": "1001", "maxContacts": 2.0, "enabled": true, "privacy": "NONE", "expires": 30.0}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v (%s)", k, m[k], v, got)
		}
	}
	acl := (&aclpb.CreateACLRequest{}).ProtoReflect().Descriptor()
	got, err = requestJSON(acl, nil, []string{"allow=10.0.0.0/8, 192.168.0.0/16", `deny=["0.0.0.0/0"]`})
	if err != nil || !strings.Contains(string(got), `"allow":["10.0.0.0/8","192.168.0.0/16"]`) || !strings.Contains(string(got), `"deny":["0.0.0.0/0"]`) {
		t.Fatalf("%s %v", got, err)
	}
	for _, bad := range [][]string{{"nosuch=1"}, {"maxContacts=many"}, {"novalue"}} {
		if _, err := requestJSON(md, nil, bad); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
	if _, err := requestJSON(md, []byte(`[1]`), nil); err == nil {
		t.Error("-d with a JSON list: no error")
	}
}

func TestParseCtlArgs(t *testing.T) {
	env := func(k string) string { return map[string]string{"ROUTR_API_KEY": "k1"}[k] }
	f, pos, err := parseCtlArgs([]string{"get", "-o", "json", "agents", "a1", "-endpoint", "h:1"}, env, nil)
	if err != nil || f.output != "json" || f.endpoint != "h:1" || f.apiKey != "k1" || strings.Join(pos, " ") != "get agents a1" {
		t.Fatalf("%+v %v %v", f, pos, err)
	}
	if _, _, err := parseCtlArgs([]string{"get", "-o", "yaml"}, env, nil); err == nil {
		t.Fatal("-o yaml accepted")
	}
}

func TestCtlAPIKeyCommands(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "ctl.db")
	vars := map[string]string{"DATABASE_URL": "sqlite:" + dbPath, "ENCRYPTION_KEY": strings.Repeat("ab", 32)}
	env := func(k string) string { return vars[k] }
	ctl := func(args ...string) (string, string) {
		t.Helper()
		var out, errb strings.Builder
		if code := run(append([]string{"ctl"}, args...), env, &out, &errb); code != 0 {
			t.Fatalf("ctl %v: exit %d: %s%s", args, code, out.String(), errb.String())
		}
		return out.String(), errb.String()
	}
	out, note := ctl("apikey", "create", "ops", "-o", "json")
	var k struct{ ID, Name, Key string }
	if err := json.Unmarshal([]byte(out), &k); err != nil || k.Name != "ops" || !strings.Contains(k.Key, k.ID) {
		t.Fatalf("create: %v %q", err, out)
	}
	if !strings.Contains(note, "created a new database "+dbPath) {
		t.Errorf("no note about the new database: %q", note)
	}
	if out, note = ctl("apikey", "list"); !strings.Contains(out, k.ID) || note != "" {
		t.Fatalf("list: %q %q", out, note)
	}
	ctl("apikey", "revoke", k.ID)
	out, _ = ctl("apikey", "list")
	if line := out[strings.Index(out, k.ID):]; !strings.Contains(strings.SplitN(line, "\n", 2)[0], "T") || len(strings.Fields(strings.SplitN(line, "\n", 2)[0])) != 4 {
		t.Fatalf("revoked key listed without a revocation time: %q", out)
	}
	var errb strings.Builder
	if code := run([]string{"ctl", "apikey", "revoke", "nosuchid"}, env, io.Discard, &errb); code == 0 {
		t.Fatal("revoking an unknown key succeeded")
	}
	if code := run([]string{"ctl", "get", "nosuchkind"}, env, io.Discard, &errb); code != 2 || !strings.Contains(errb.String(), "unknown kind") {
		t.Fatalf("unknown kind: exit %d, %q", code, errb.String())
	}
}
