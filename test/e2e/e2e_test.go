// Package e2e drives the built routr binary with real SIP peers (sipp and
// the siptest phone) and counts its events from a real NATS subscriber.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/routr-go/routr/internal/siptest"
)

var (
	binary   string
	repoRoot string
)

func TestMain(m *testing.M) {
	wd, _ := os.Getwd()
	repoRoot = filepath.Join(wd, "..", "..")
	dir, err := os.MkdirTemp("", "routr-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "routr")
	build := exec.Command("go", "build", "-race", "-o", binary, "./cmd/routr")
	build.Dir = repoRoot
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build routr:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	// Phones, NATS subscribers and process waiters of every test must be
	// gone by now.
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left behind:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// nextPort walks ports below the kernel's ephemeral range (32768 and up
// on Linux): a port the kernel handed out with ":0" and that was then
// closed may be handed out again at once, to an outgoing connection of
// another test, between freePort and the binary binding it. Each test
// binary starts at its own offset so that packages running side by side
// rarely meet.
var nextPort atomic.Int32

func init() { nextPort.Store(int32(20000 + (os.Getpid()%100)*100)) }

// freePort returns a port free for both UDP and TCP on loopback.
func freePort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 1000; i++ {
		port := int(nextPort.Add(1))
		if port >= 32000 {
			nextPort.Store(20000)
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// edge is a running routr binary.
type edge struct {
	sipPort  int
	natsURL  string
	httpAddr string
	log      *syncBuffer // written by the process while tests read it
	cmd      *exec.Cmd
	events   *collector
}

func startEdge(t *testing.T, extraEnv ...string) *edge {
	t.Helper()
	dir := t.TempDir()
	e := &edge{sipPort: freePort(t), log: &syncBuffer{}}
	natsPort := freePort(t)
	e.natsURL = fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
	e.httpAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := fmt.Sprintf(`kind: EdgePort
apiVersion: v2beta1
ref: edgeport-e2e
spec:
  bindAddr: 127.0.0.1
  transport:
    - protocol: udp
      port: %d
    - protocol: tcp
      port: %d
`, e.sipPort, e.sipPort)
	cfgPath := filepath.Join(dir, "edgeport.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	e.cmd = exec.Command(binary)
	e.cmd.Env = append(os.Environ(),
		"CONFIG_PATH="+cfgPath,
		"PATH_TO_RESOURCES="+filepath.Join(repoRoot, "config", "resources"),
		"EMBEDDED_NATS=true",
		"NATS_PUBLISHER_URL="+e.natsURL,
		"HTTP_ADDR="+e.httpAddr,
		"API_ADDR=127.0.0.1:"+strconv.Itoa(freePort(t)), // database modes serve the API
		"ENABLE_HEALTHCHECKS=true",
		"LOG_LEVEL=warn",
	)
	e.cmd.Env = append(e.cmd.Env, extraEnv...)
	e.cmd.Stdout, e.cmd.Stderr = e.log, e.log
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.stop(t) })
	deadline := time.Now().Add(15 * time.Second)
	for {
		res, err := http.Get("http://" + e.httpAddr + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("edge not healthy in time; log:\n%s", e.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.events = collect(t, e.natsURL)
	return e
}

// stop sends SIGTERM and expects a clean exit.
func (e *edge) stop(t *testing.T) {
	if e.cmd.ProcessState != nil {
		return
	}
	_ = e.cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- e.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("edge exited with %v; log:\n%s", err, e.log.String())
		}
	case <-time.After(15 * time.Second):
		_ = e.cmd.Process.Kill()
		t.Errorf("edge did not stop on SIGTERM; log:\n%s", e.log.String())
	}
	if strings.Contains(e.log.String(), "DATA RACE") {
		t.Errorf("race detected:\n%s", e.log.String())
	}
}

// collector is a NATS subscriber counting events by subject.
type collector struct {
	mu   sync.Mutex
	msgs []*nats.Msg
}

func collect(t *testing.T, url string) *collector {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c := &collector{}
	if _, err := nc.Subscribe("routr.>", func(m *nats.Msg) {
		c.mu.Lock()
		c.msgs = append(c.msgs, m)
		c.mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return c
}

// bodies returns the payloads published on subject.
func (c *collector) bodies(subject string) []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []map[string]any
	for _, m := range c.msgs {
		if m.Subject != subject {
			continue
		}
		var b map[string]any
		if err := json.Unmarshal(m.Data, &b); err == nil {
			out = append(out, b)
		}
	}
	return out
}

// waitCount waits until subject has n messages, failing on more.
func (c *collector) waitCount(t *testing.T, subject string, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := c.bodies(subject)
		if len(got) == n {
			time.Sleep(300 * time.Millisecond) // anything extra arrives now
			if got = c.bodies(subject); len(got) == n {
				return got
			}
		}
		if len(got) > n || time.Now().After(deadline) {
			t.Fatalf("%s: %d events, want %d", subject, len(got), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func needSipp(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("sipp"); err != nil {
		if os.Getenv("E2E_REQUIRE_SIPP") != "" {
			t.Fatal("sipp not installed (apt-get install sip-tester)")
		}
		t.Skip("sipp not installed (apt-get install sip-tester)")
	}
}

// sipp runs a scenario against the edge and returns its output.
func (e *edge) sipp(t *testing.T, ctx context.Context, scenario string, port int, args ...string) (string, error) {
	t.Helper()
	base := []string{
		"-sf", filepath.Join(repoRoot, "test", "e2e", "scenarios", scenario),
		"-p", strconv.Itoa(port), "-i", "127.0.0.1", "-nostdin", "-timeout", "30s", "-timeout_error",
		"-trace_err", "-error_file", filepath.Join(t.TempDir(), "err.log"),
	}
	cmd := exec.CommandContext(ctx, "sipp", append(append(base, args...), fmt.Sprintf("127.0.0.1:%d", e.sipPort))...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestCheckCommand(t *testing.T) {
	// Run from the repository so the default PATH_TO_RESOURCES resolves.
	cmd := exec.Command(binary, "check")
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok:") {
		t.Fatalf("check on the shipped resources: %v\n%s", err, out)
	}

	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "agents.yaml"), []byte(`- apiVersion: v2beta1
  kind: Agent
  ref: agent-x
  metadata:
    name: X
  spec:
    username: "1001"
    domainRef: domain-missing
    credentialsRef: credentials-missing
`), 0o644)
	cmd = exec.Command(binary, "check")
	cmd.Env = append(os.Environ(), "PATH_TO_RESOURCES="+bad)
	out, err = cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("check passed on broken resources:\n%s", out)
	}
	for _, want := range []string{"agents.yaml:8", "agent-x", "spec.domainRef", "domain-missing"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
}

func TestSippRegisterAndCalls(t *testing.T) {
	needSipp(t)
	e := startEdge(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	callee := freePort(t)
	if out, err := e.sipp(t, ctx, "register.xml", callee, "-m", "1",
		"-set", "user", "1002", "-set", "domain", "sip.local", "-set", "expires", "300", "-au", "1002", "-ap", "1234"); err != nil {
		t.Fatalf("sipp register: %v\n%s\nedge log:\n%s", err, out, e.log)
	}
	reg := e.events.waitCount(t, "routr.endpoint.registered", 1)
	if reg[0]["aor"] != "sip:1002@sip.local" || reg[0]["expires"] != float64(300) {
		t.Fatalf("endpoint.registered = %v", reg[0])
	}

	// 20 answered calls, two at a time, each with its 407 round.
	const calls = 20
	uas := make(chan error, 1)
	go func() {
		out, err := e.sipp(t, ctx, "callee.xml", callee, "-m", strconv.Itoa(calls), "-set", "user", "1002")
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, out)
		}
		uas <- err
	}()
	time.Sleep(300 * time.Millisecond)
	out, err := e.sipp(t, ctx, "caller.xml", freePort(t), "-m", strconv.Itoa(calls), "-l", "2", "-r", "10", "-d", "100",
		"-set", "user", "1001", "-set", "domain", "sip.local", "-set", "callee", "1002", "-au", "1001", "-ap", "1234")
	if err != nil {
		t.Fatalf("sipp caller: %v\n%s\nedge log:\n%s", err, out, e.log)
	}
	if err := <-uas; err != nil {
		t.Fatalf("sipp callee: %v", err)
	}
	started := e.events.waitCount(t, "routr.call.started", calls)
	ended := e.events.waitCount(t, "routr.call.ended", calls)
	e.events.waitCount(t, "routr.call.answered", calls)
	ids := map[string]int{}
	for _, s := range started {
		ids[s["callId"].(string)]++
		if s["from"] != "sip:1001@sip.local" || s["to"] != "sip:1002@sip.local" {
			t.Errorf("call.started from/to = %v / %v", s["from"], s["to"])
		}
	}
	for _, en := range ended {
		ids[en["callId"].(string)]++
		if en["hangupCause"] != "NORMAL_CLEARING" {
			t.Errorf("call.ended hangupCause = %v", en["hangupCause"])
		}
	}
	for id, n := range ids {
		if n != 2 {
			t.Errorf("call %s has %d start+end events, want exactly 2", id, n)
		}
	}

	// A declined call: 486 relayed, USER_BUSY.
	busyPort := freePort(t)
	if out, err := e.sipp(t, ctx, "register.xml", busyPort, "-m", "1",
		"-set", "user", "1003", "-set", "domain", "sip.local", "-set", "expires", "300", "-au", "1003", "-ap", "1234"); err != nil {
		t.Fatalf("sipp register 1003: %v\n%s", err, out)
	}
	go func() {
		out, err := e.sipp(t, ctx, "callee_busy.xml", busyPort, "-m", "1")
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, out)
		}
		uas <- err
	}()
	time.Sleep(300 * time.Millisecond)
	if out, err := e.sipp(t, ctx, "caller_busy.xml", freePort(t), "-m", "1",
		"-set", "user", "1001", "-set", "domain", "sip.local", "-set", "callee", "1003", "-au", "1001", "-ap", "1234"); err != nil {
		t.Fatalf("sipp caller_busy: %v\n%s\nedge log:\n%s", err, out, e.log)
	}
	if err := <-uas; err != nil {
		t.Fatalf("sipp callee_busy: %v", err)
	}
	ended = e.events.waitCount(t, "routr.call.ended", calls+1)
	last := ended[len(ended)-1]
	if last["hangupCause"] != "USER_BUSY" || last["sipCode"] != float64(486) {
		t.Fatalf("declined call ended with %v", last)
	}

	// Metrics show what happened.
	res, err := http.Get("http://" + e.httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.ReadFrom(res.Body)
	res.Body.Close()
	for _, want := range []string{`routr_sip_requests_total{method="INVITE"}`, `routr_registrar_registrations_total{outcome="stored"}`, "routr_location_bindings"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestPhonesAgainstBinary runs the call flows sipp does not cover with the
// siptest phone, against the built binary, over UDP and TCP.
func TestPhonesAgainstBinary(t *testing.T) {
	e := startEdge(t)
	addr := fmt.Sprintf("127.0.0.1:%d", e.sipPort)
	phone := func(transport, user string) *siptest.Phone {
		p, err := siptest.NewPhone(transport, user, "sip.local", "1234", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		return p
	}
	ended := 0
	wantEnded := func(cause string) {
		t.Helper()
		ended++
		got := e.events.waitCount(t, "routr.call.ended", ended)
		if c := got[len(got)-1]["hangupCause"]; c != cause {
			t.Fatalf("call.ended hangupCause %v, want %s", c, cause)
		}
	}
	for _, tp := range []string{"udp", "tcp"} {
		a := phone(tp, "1001")
		b := phone(tp, "1002")
		for _, alg := range []string{"SHA-256", "MD5"} {
			res, err := b.Register(600, alg)
			if err != nil || res.StatusCode != 200 {
				t.Fatalf("%s REGISTER with %s: %v %v", tp, alg, res, err)
			}
		}

		// Callee hangs up after a re-INVITE.
		c := siptest.Dial(t, a, b, "1002", "e2e-reinvite-"+tp)
		ok := c.Answer()
		re := a.InDialog(sip.INVITE, c.Invite, ok, true, c.Invite.CSeq().SeqNo+1)
		_ = a.Send(re)
		gotRe, err := b.Request(sip.INVITE, siptest.Wait)
		if err != nil {
			t.Fatal(err)
		}
		_ = b.Send(b.Reply(gotRe, 200, "OK"))
		if r, err := a.Response(sip.INVITE, siptest.Wait); err != nil || r.StatusCode != 200 {
			t.Fatalf("re-INVITE: %v %v", r, err)
		}
		_ = a.Send(a.InDialog(sip.ACK, c.Invite, ok, true, c.Invite.CSeq().SeqNo+1))
		if _, err := b.Request(sip.ACK, siptest.Wait); err != nil {
			t.Fatal(err)
		}
		c.Hangup(ok, false)
		wantEnded("NORMAL_CLEARING")

		// Cancelled while ringing.
		c = siptest.Dial(t, a, b, "1002", "e2e-cancel-"+tp)
		_ = b.Send(b.Reply(c.Received, 180, "Ringing"))
		if r, err := a.Response(sip.INVITE, siptest.Wait); err != nil || r.StatusCode != 180 {
			t.Fatalf("want 180: %v %v", r, err)
		}
		c.Cancel()
		wantEnded("NORMAL_CLEARING")

		// Refused by the edge: no call, no event.
		for user, code := range map[string]int{"1003": 480, "7777": 404} {
			siptest.Dial(t, a, nil, user, "e2e-refused-"+user+tp)
			if r, err := a.Response(sip.INVITE, siptest.Wait); err != nil || r.StatusCode != code {
				t.Fatalf("call to %s: %v %v, want %d", user, r, err, code)
			}
		}
		// Unregister.
		if res, err := b.Register(0, ""); err != nil || res.StatusCode != 200 {
			t.Fatalf("unregister: %v %v", res, err)
		}
	}
	started := e.events.waitCount(t, "routr.call.started", 4)
	for _, s := range started {
		if strings.HasPrefix(s["callId"].(string), "e2e-refused") {
			t.Fatalf("a refused call published call.started: %v", s)
		}
	}
	un := e.events.waitCount(t, "routr.endpoint.unregistered", 2)
	if un[0]["reason"] != "unregister" {
		t.Fatalf("endpoint.unregistered = %v", un[0])
	}
}
