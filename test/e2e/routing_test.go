package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/routr-go/routr/internal/siptest"
)

// resourcesWithProvider copies the shipped resources into a directory of
// its own with trunk-01's outbound URI on port.
func resourcesWithProvider(t *testing.T, port int) string {
	t.Helper()
	src := filepath.Join(repoRoot, "config", "resources")
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "trunks.yaml" {
			if !strings.Contains(string(b), "port: 5080") {
				t.Fatal("trunks.yaml no longer names port 5080")
			}
			b = []byte(strings.ReplaceAll(string(b), "port: 5080", fmt.Sprintf("port: %d", port)))
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestSippThroughTrunk calls the PSTN through the shipped trunk with sipp
// as agent and provider (the provider challenges; the edge answers with
// the trunk's credentials), then takes a DID call from the trunk to an
// agent, against the built binary. Each call has one call.started and one
// call.ended.
func TestSippThroughTrunk(t *testing.T) {
	needSipp(t)
	providerPort := freePort(t)
	e := startEdge(t, "PATH_TO_RESOURCES="+resourcesWithProvider(t, providerPort))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	uas := make(chan error, 1)
	go func() {
		out, err := e.sipp(t, ctx, "provider.xml", providerPort, "-m", "1", "-set", "authuser", "pbx-1")
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, out)
		}
		uas <- err
	}()
	time.Sleep(300 * time.Millisecond)
	if out, err := e.sipp(t, ctx, "caller.xml", freePort(t), "-m", "1",
		"-set", "user", "1001", "-set", "domain", "sip.local", "-set", "callee", "+4930123456", "-au", "1001", "-ap", "1234"); err != nil {
		t.Fatalf("sipp caller: %v\n%s\nedge log:\n%s", err, out, e.log)
	}
	if err := <-uas; err != nil {
		t.Fatalf("sipp provider: %v\nedge log:\n%s", err, e.log)
	}
	started := e.events.waitCount(t, "routr.call.started", 1)
	e.events.waitCount(t, "routr.call.ended", 1)
	if started[0]["to"] != "sip:+4930123456@sip.local" {
		t.Fatalf("call.started to %v", started[0]["to"])
	}

	// From the PSTN: number-01 rings agent 1001.
	addr := fmt.Sprintf("127.0.0.1:%d", e.sipPort)
	agent, err := siptest.NewPhone("udp", "1001", "sip.local", "1234", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Close()
	if res, err := agent.Register(300, ""); err != nil || res.StatusCode != 200 {
		t.Fatalf("register: %v %v", res, err)
	}
	trunk, err := siptest.NewPhone("udp", "+15551234567", "provider.test", "", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer trunk.Close()
	inv := trunk.NewRequest(sip.INVITE, "sip:+17066041487@trunk01.sip.local", "e2e-did")
	_ = trunk.Send(inv)
	got, err := agent.Request(sip.INVITE, siptest.Wait)
	if err != nil {
		t.Fatalf("%v\nedge log:\n%s", err, e.log)
	}
	if h := got.GetHeader("X-Call-Direction"); h == nil || h.Value() != "from-pstn" {
		t.Fatalf("X-Call-Direction %v", h)
	}
	c := (&siptest.Call{Caller: trunk, Callee: agent, CallID: "e2e-did", Invite: inv, Received: got}).Bind(t)
	ok := c.Answer()
	c.Hangup(ok, true)
	e.events.waitCount(t, "routr.call.started", 2)
	ended := e.events.waitCount(t, "routr.call.ended", 2)
	if ended[1]["callId"] != "e2e-did" || ended[1]["hangupCause"] != "NORMAL_CLEARING" {
		t.Fatalf("call.ended %v", ended[1])
	}
}
