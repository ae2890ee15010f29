package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/routr-go/routr/internal/siptest"
)

// blackHole is a UDP socket that reads everything sent to it and answers
// nothing: a destination that silently drops packets (no ICMP either).
type blackHole struct {
	pc      net.PacketConn
	packets atomic.Int64
}

func newBlackHole(t *testing.T, addr string) *blackHole {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	b := &blackHole{pc: pc}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			b.packets.Add(1)
		}
	}()
	return b
}

func (b *blackHole) port() int { return b.pc.LocalAddr().(*net.UDPAddr).Port }

// heapAfterGC forces a collection (pprof's gc=1, ENABLE_PPROF=true) and
// returns the heap in use and the goroutines.
func heapAfterGC(t *testing.T, e *natsEdge) (heap, goroutines float64) {
	t.Helper()
	res, err := http.Get("http://" + e.httpAddr + "/debug/pprof/heap?gc=1")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	m := e.metrics(t)
	return m["go_memstats_heap_inuse_bytes"], m["go_goroutines"]
}

// backToBaseline waits until the edge holds no transaction or call and
// its goroutines and heap (after a GC) are back near where they were
// before the fault: within a few goroutines and 16 MB.
func backToBaseline(t *testing.T, e *natsEdge, heap0, gor0 float64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		m := e.metrics(t)
		busy := m["routr_sip_server_transactions_active"] + m["routr_sip_client_transactions_active"] +
			m["routr_calls_active"] + m["routr_sip_dialogs_awaiting_ack"]
		heap, gor := heapAfterGC(t, e)
		if busy == 0 && gor <= gor0+10 && heap <= heap0+16<<20 {
			t.Logf("back to baseline: goroutines %v (before %v), heap in use %.1f MB (before %.1f MB)", gor, gor0, heap/1e6, heap0/1e6)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not back to baseline: transactions+calls %v, goroutines %v (before %v), heap %.1f MB (before %.1f MB)",
				busy, gor, gor0, heap/1e6, heap0/1e6)
		}
		time.Sleep(time.Second)
	}
}

// healthyCalls makes n answered calls from caller to callee (1002).
func healthyCalls(t *testing.T, caller, callee *siptest.Phone, prefix string, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%s-%d", prefix, i)
		c := siptest.Dial(t, caller, callee, "1002", id)
		ok := c.Answer()
		c.Hangup(ok, true)
		ids = append(ids, id)
	}
	return ids
}

// endedCauses maps the Call-IDs with the given prefix to the hangupCause
// of their call.ended.
func endedCauses(sub *subscriber, prefix string) map[string]string {
	out := map[string]string{}
	for _, m := range sub.received() {
		if m.header.Get(hdrEventType) != "call.ended" {
			continue
		}
		var b struct {
			CallID string `json:"callId"`
			Cause  string `json:"hangupCause"`
		}
		if json.Unmarshal(m.data, &b) == nil && strings.HasPrefix(b.CallID, prefix) {
			out[b.CallID] = b.Cause
		}
	}
	return out
}

// waitEnded waits until every call in ids has its call.ended and checks
// its cause.
func waitEnded(t *testing.T, sub *subscriber, prefix string, ids []string, cause string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := endedCauses(sub, prefix)
		if len(got) >= len(ids) {
			for _, id := range ids {
				if got[id] != cause {
					t.Errorf("call %s ended with %q, want %s", id, got[id], cause)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d call.ended for %s*, want %d: %v", len(got), prefix, len(ids), got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBlackHoledAgent: agent 1003 registers, then its address drops
// everything (a black hole). Calls to it fail after Timer B with 408 and
// NO_USER_RESPONSE, and only they do: calls to the healthy agent 1002 made
// while they hang all complete. Afterwards the edge holds no transaction
// or call, and its goroutines and heap are back to where they were.
func TestBlackHoledAgent(t *testing.T) {
	t.Parallel()
	ns := newTestNATS(t, "")
	ns.start(true)
	sub := subscribe(t, ns.url())
	e := startNATSEdge(t, ns.url(), "ENABLE_PPROF=true")
	caller, callee := phones(t, e)
	lost, err := siptest.NewPhone("udp", "1003", "sip.local", "1234", e.sipAddr)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := lost.Register(600, ""); err != nil || res.StatusCode != 200 {
		t.Fatalf("REGISTER 1003: %v %v", res, err)
	}
	hole := lost.Addr()
	lost.Close()
	bh := newBlackHole(t, hole) // the agent's address now drops everything
	other, err := siptest.NewPhone("udp", "1001", "sip.local", "1234", e.sipAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)

	healthyCalls(t, caller, callee, "e2e-bh-warm", 3)
	heap0, gor0 := heapAfterGC(t, e)

	const lostCalls = 3
	var invites []*siptest.Call
	for i := range lostCalls {
		invites = append(invites, siptest.Dial(t, other, nil, "1003", fmt.Sprintf("e2e-bh-lost-%d", i)))
	}
	ok := healthyCalls(t, caller, callee, "e2e-bh-ok", 10)
	// Timer B (64*T1 = 32 s) ends each black-holed INVITE.
	for range lostCalls {
		res, err := other.Response(sip.INVITE, 60*time.Second)
		if err != nil {
			t.Fatalf("black-holed call: %v", err)
		}
		for _, c := range invites {
			if c.CallID == res.CallID().Value() {
				_ = other.Send(siptest.AckFor(c.Invite, res))
			}
		}
		if res.StatusCode != 408 {
			t.Errorf("black-holed call %s answered %d, want 408", res.CallID().Value(), res.StatusCode)
		}
	}
	if n := bh.packets.Load(); n < 2*lostCalls {
		t.Errorf("the black hole got %d packets: INVITEs not sent and retransmitted to it", n)
	}
	var lostIDs []string
	for _, c := range invites {
		lostIDs = append(lostIDs, c.CallID)
	}
	waitEnded(t, sub, "e2e-bh-lost", lostIDs, "NO_USER_RESPONSE")
	waitEnded(t, sub, "e2e-bh-ok", ok, "NORMAL_CLEARING")
	backToBaseline(t, e, heap0, gor0)
}

// resourcesWithHops copies the shipped resources with trunk-01's one
// outbound URI replaced by two: first (priority 10) and second (20).
func resourcesWithHops(t *testing.T, first, second int) string {
	t.Helper()
	dir := resourcesWithProvider(t, first)
	path := filepath.Join(dir, "trunks.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	hop := `        - uri:
            user: pbx-1
            host: 127.0.0.1
            port: %d
            transport: udp
          priority: %d
          weight: 10
          enabled: true
`
	one := fmt.Sprintf(hop, first, 10)
	if !strings.Contains(string(b), one) {
		t.Fatalf("trunks.yaml no longer has the outbound URI block:\n%s", b)
	}
	b = []byte(strings.Replace(string(b), one, one+fmt.Sprintf(hop, second, 20), 1))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestBlackHoledTrunkHop: the first outbound URI of a trunk drops
// everything. Each call to the PSTN fails over to the second URI, which
// answers, while calls between agents go on; the dead hop costs each
// PSTN call a short wait, nothing else. Afterwards the edge is back to
// its baseline.
func TestBlackHoledTrunkHop(t *testing.T) {
	t.Parallel()
	bh := newBlackHole(t, "127.0.0.1:0")
	ns := newTestNATS(t, "")
	ns.start(true)
	sub := subscribe(t, ns.url())
	providerPort := freePort(t)
	e := startNATSEdge(t, ns.url(), "ENABLE_PPROF=true", "PATH_TO_RESOURCES="+resourcesWithHops(t, bh.port(), providerPort))
	caller, callee := phones(t, e)
	provider, err := siptest.NewPhoneWith("udp", "pbx-1", "provider.test", "", e.sipAddr, siptest.Options{LocalPort: providerPort})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(provider.Close)
	agent, err := siptest.NewPhone("udp", "1001", "sip.local", "1234", e.sipAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(agent.Close)

	healthyCalls(t, caller, callee, "e2e-hop-warm", 3)
	heap0, gor0 := heapAfterGC(t, e)

	const pstnCalls = 3
	var pstn []string
	var ok []string
	for i := range pstnCalls {
		id := fmt.Sprintf("e2e-hop-pstn-%d", i)
		c := siptest.Dial(t, agent, nil, "+4930123456", id)
		// Calls between agents while this one waits on the dead hop.
		ok = append(ok, healthyCalls(t, caller, callee, fmt.Sprintf("e2e-hop-ok-%d", i), 3)...)
		got, err := provider.Request(sip.INVITE, 10*time.Second)
		if err != nil {
			t.Fatalf("PSTN call %s did not fail over to the second URI: %v; log:\n%s", id, err, e.log)
		}
		c.Callee, c.Received = provider, got
		c.Bind(t)
		c.Hangup(c.Answer(), true)
		pstn = append(pstn, id)
	}
	if n := bh.packets.Load(); n < pstnCalls {
		t.Errorf("the dead hop got %d packets, want at least one INVITE per call", n)
	}
	waitEnded(t, sub, "e2e-hop-pstn", pstn, "NORMAL_CLEARING")
	waitEnded(t, sub, "e2e-hop-ok", ok, "NORMAL_CLEARING")
	backToBaseline(t, e, heap0, gor0)
}
