package main

import (
	"encoding/json"
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
