package e2e

// Event delivery against the built binary with a real NATS server that the
// test runs in its own process (nats-server/v2) on a fixed loopback port,
// stops, and starts again on the same port: NATS unreachable at start, an
// outage in the middle of a run of calls (core and JetStream), and the
// flush on SIGTERM.
//
// Determinism. A core NATS subscriber only sees what is published after
// its subscription reached the server. After every (re)start of the server
// the edge must therefore not get in before the test's subscriber has
// (re)subscribed, and the edge's reconnect (nats.go, every second) races
// with the subscriber's. So the test server authenticates clients with a
// gate (server.Options.CustomClientAuthentication): the edge's connection
// (client name "routr") is held inside CONNECT until the test opens the
// gate; every other client passes at once. Holding is not refusing: an
// authorization error would make nats.go give up on the server after two
// attempts, a held CONNECT only looks like a slow server (it times out
// after nats.go's 2s and is tried again).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/routr-go/routr/internal/siptest"
)

// Names the edge uses on NATS (internal/events).
const (
	edgeClientName  = "routr" // events.ConnOptions.Name default
	hdrEventID      = "Routr-Event-Id"
	hdrMsgID        = "Nats-Msg-Id"
	hdrEventType    = "Routr-Event-Type"
	eventsStream    = "ROUTR_EVENTS" // events.DefaultStream
	subscriberName  = "e2e-subscriber"
	eventsPublisher = `publisher="nats"`
)

// ---- the NATS server ----------------------------------------------------

// natsGate is the test server's client authentication: it holds the edge's
// CONNECT until opened.
type natsGate struct {
	mu    sync.Mutex
	open  chan struct{} // closed while the gate is open
	quit  chan struct{} // closed when the server stops: lets held CONNECTs go
	edges int           // edge connections let through
}

func (g *natsGate) Check(c server.ClientAuthentication) bool {
	if c.GetOpts().Name != edgeClientName {
		return true
	}
	g.mu.Lock()
	open, quit := g.open, g.quit
	g.mu.Unlock()
	select {
	case <-open:
		g.mu.Lock()
		g.edges++
		g.mu.Unlock()
	case <-quit:
		// The server is stopping and closes this connection anyway. Not
		// an authorization error: twice in a row, nats.go would give up.
	}
	return true
}

func (g *natsGate) edgeConnections() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.edges
}

// testNATS is a NATS server on a fixed port that the test stops and starts.
type testNATS struct {
	t        *testing.T
	port     int
	storeDir string // JetStream on, with this store, when not empty
	gate     *natsGate
	s        *server.Server
}

func newTestNATS(t *testing.T, storeDir string) *testNATS {
	t.Helper()
	n := &testNATS{t: t, port: freePort(t), storeDir: storeDir, gate: &natsGate{}}
	t.Cleanup(n.stop)
	return n
}

func (n *testNATS) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

// start starts the server on its port; with open false the edge is held
// until openGate.
func (n *testNATS) start(open bool) {
	n.t.Helper()
	if n.s != nil {
		n.t.Fatal("NATS server already running")
	}
	n.gate.mu.Lock()
	n.gate.open, n.gate.quit = make(chan struct{}), make(chan struct{})
	if open {
		close(n.gate.open)
	}
	n.gate.mu.Unlock()
	opts := &server.Options{
		ServerName:                 "e2e-nats",
		Host:                       "127.0.0.1",
		Port:                       n.port,
		NoLog:                      true,
		NoSigs:                     true,
		CustomClientAuthentication: n.gate,
		JetStream:                  n.storeDir != "",
		StoreDir:                   n.storeDir,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		n.t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		n.t.Fatalf("NATS server not ready on port %d", n.port)
	}
	n.s = s
}

func (n *testNATS) openGate() {
	n.gate.mu.Lock()
	defer n.gate.mu.Unlock()
	select {
	case <-n.gate.open:
	default:
		close(n.gate.open)
	}
}

// stop shuts the server down and waits for it; its port is free again.
func (n *testNATS) stop() {
	if n.s == nil {
		return
	}
	n.gate.mu.Lock()
	close(n.gate.quit)
	n.gate.mu.Unlock()
	n.s.Shutdown()
	n.s.WaitForShutdown()
	n.s = nil
}

// ---- a core NATS subscriber ---------------------------------------------

// subscriber keeps every message on routr.> in arrival order, across
// server restarts (it reconnects and resubscribes on its own).
type subscriber struct {
	nc   *nats.Conn
	mu   sync.Mutex
	msgs []rmsg
}

// rmsg is a received message, from core NATS or from the stream.
type rmsg struct {
	subject string
	header  nats.Header
	data    []byte
}

func subscribe(t *testing.T, url string) *subscriber {
	t.Helper()
	s := &subscriber{}
	nc, err := nats.Connect(url, nats.Name(subscriberName), nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond), nats.ReconnectJitter(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	s.nc = nc
	t.Cleanup(nc.Close)
	if _, err := nc.Subscribe("routr.>", func(m *nats.Msg) {
		s.mu.Lock()
		s.msgs = append(s.msgs, rmsg{m.Subject, m.Header, m.Data})
		s.mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	s.ready(t, 0)
	return s
}

func (s *subscriber) reconnects() uint64 { return s.nc.Stats().Reconnects }

// ready waits until the subscriber is connected after at least reconnects
// reconnections and the server has its subscription (nats.go resends
// subscriptions before a reconnect completes; the flush round trip proves
// the server processed them).
func (s *subscriber) ready(t *testing.T, reconnects uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if s.reconnects() >= reconnects && s.nc.IsConnected() && s.nc.FlushTimeout(time.Second) == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("subscriber not (re)connected")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *subscriber) received() []rmsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]rmsg(nil), s.msgs...)
}

// waitDistinct waits until n distinct event ids arrived, then a little
// longer for any duplicate or extra event still on its way, and returns
// everything received. When they do not all arrive it reports an error
// and returns what did, for the checks to name what is missing.
func (s *subscriber) waitDistinct(t *testing.T, n int) []rmsg {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := s.received()
		d := distinctIDs(got)
		if d >= n {
			time.Sleep(300 * time.Millisecond)
			return s.received()
		}
		if time.Now().After(deadline) {
			t.Errorf("subscriber has %d distinct events (%d messages), want %d", d, len(got), n)
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func distinctIDs(msgs []rmsg) int {
	seen := map[string]bool{}
	for _, m := range msgs {
		seen[m.header.Get(hdrEventID)] = true
	}
	return len(seen)
}

// ---- the edge process ---------------------------------------------------

// syncBuffer is the edge's log, read while the process writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// natsEdge is the routr binary publishing to the test's NATS server.
type natsEdge struct {
	sipAddr  string
	httpAddr string
	log      *syncBuffer
	cmd      *exec.Cmd
	done     chan struct{} // closed when the process exited
	err      error         // its exit status, once done
}

// startNATSEdge starts the binary with the NATS publisher pointed at
// natsURL (and no embedded server) and waits until it is healthy, which it
// is whether or not NATS is up.
func startNATSEdge(t *testing.T, natsURL string, extraEnv ...string) *natsEdge {
	t.Helper()
	dir := t.TempDir()
	sipPort := freePort(t)
	e := &natsEdge{
		sipAddr:  fmt.Sprintf("127.0.0.1:%d", sipPort),
		httpAddr: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		log:      &syncBuffer{},
		done:     make(chan struct{}),
	}
	cfg := fmt.Sprintf(`kind: EdgePort
apiVersion: v2beta1
ref: edgeport-e2e-events
spec:
  bindAddr: 127.0.0.1
  transport:
    - protocol: udp
      port: %d
    - protocol: tcp
      port: %d
`, sipPort, sipPort)
	cfgPath := filepath.Join(dir, "edgeport.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	e.cmd = exec.Command(binary)
	e.cmd.Env = append(os.Environ(),
		"CONFIG_PATH="+cfgPath,
		"PATH_TO_RESOURCES="+filepath.Join(repoRoot, "config", "resources"),
		"EMBEDDED_NATS=false",
		"EVENTS_DURABLE=false",
		"NATS_PUBLISHER_ENABLED=true",
		"NATS_PUBLISHER_URL="+natsURL,
		"NATS_PUBLISHER_SUBJECT=routr",
		"CONSOLE_PUBLISHER_ENABLED=false",
		"HTTP_ADDR="+e.httpAddr,
		"ENABLE_HEALTHCHECKS=true",
		"LOG_LEVEL=warn",
	)
	e.cmd.Env = append(e.cmd.Env, extraEnv...) // later entries win
	e.cmd.Stdout, e.cmd.Stderr = e.log, e.log
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		e.err = e.cmd.Wait()
		close(e.done)
	}()
	t.Cleanup(func() {
		if !e.exited() {
			_ = e.cmd.Process.Signal(syscall.SIGTERM)
			if err := e.wait(20 * time.Second); err != nil {
				t.Errorf("edge: %v; log:\n%s", err, e.log)
			}
		}
		if strings.Contains(e.log.String(), "DATA RACE") {
			t.Errorf("race detected in the edge:\n%s", e.log)
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		res, err := http.Get("http://" + e.httpAddr + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return e
			}
		}
		if e.exited() || time.Now().After(deadline) {
			t.Fatalf("edge not healthy; log:\n%s", e.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *natsEdge) exited() bool {
	select {
	case <-e.done:
		return true
	default:
		return false
	}
}

// wait waits for the process to exit (killing it after limit, a guard
// against hangs, not a speed requirement) and returns its exit error.
func (e *natsEdge) wait(limit time.Duration) error {
	select {
	case <-e.done:
		return e.err
	case <-time.After(limit):
		_ = e.cmd.Process.Kill()
		<-e.done
		return fmt.Errorf("did not exit within %s of SIGTERM (killed)", limit)
	}
}

// metrics returns the edge's Prometheus samples by "name{labels}".
func (e *natsEdge) metrics(t *testing.T) map[string]float64 {
	t.Helper()
	res, err := http.Get("http://" + e.httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// queued is routr_events_queued of the NATS publisher.
func (e *natsEdge) queued(t *testing.T) float64 {
	t.Helper()
	m := e.metrics(t)
	v, ok := m["routr_events_queued{"+eventsPublisher+"}"]
	if !ok {
		t.Fatalf("metrics lack routr_events_queued{%s}", eventsPublisher)
	}
	return v
}

// waitQueued waits until the NATS publisher's queue holds n events.
func (e *natsEdge) waitQueued(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		q := e.queued(t)
		if q == float64(n) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("routr_events_queued = %v, want %d; log:\n%s", q, n, e.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitQueuedAtLeast waits until the NATS publisher's queue holds at least
// n events.
func (e *natsEdge) waitQueuedAtLeast(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		q := e.queued(t)
		if q >= float64(n) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("routr_events_queued = %v, want at least %d; log:\n%s", q, n, e.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitPublished waits until the NATS publisher has confirmed at least n
// events and holds none. (An event can be produced a moment after the SIP
// message a phone sees, e.g. call.ended after the BYE's 200 is relayed, so
// an empty queue alone does not say that everything went out.)
func (e *natsEdge) waitPublished(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m := e.metrics(t)
		p, q := m["routr_events_published_total{"+eventsPublisher+"}"], m["routr_events_queued{"+eventsPublisher+"}"]
		if p >= float64(n) && q == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("events published %v, queued %v; want %d published and none queued; log:\n%s", p, q, n, e.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkNoDrops fails if the edge dropped any event.
func (e *natsEdge) checkNoDrops(t *testing.T) {
	t.Helper()
	for k, v := range e.metrics(t) {
		if strings.HasPrefix(k, "routr_events_dropped_total{") && v != 0 {
			t.Errorf("%s = %v", k, v)
		}
	}
}

// ---- SIP traffic --------------------------------------------------------

// phones returns caller 1001 and callee 1002 (registered: one
// endpoint.registered event) on UDP.
func phones(t *testing.T, e *natsEdge) (caller, callee *siptest.Phone) {
	t.Helper()
	mk := func(user string) *siptest.Phone {
		p, err := siptest.NewPhone("udp", user, "sip.local", "1234", e.sipAddr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		return p
	}
	caller, callee = mk("1001"), mk("1002")
	if res, err := callee.Register(600, ""); err != nil || res.StatusCode != 200 {
		t.Fatalf("REGISTER: %v %v", res, err)
	}
	return caller, callee
}

// eventsPerCall are the events of an answered call hung up with a BYE:
// call.started, call.answered, call.ended.
const eventsPerCall = 3

// answeredCall makes one call through the edge: 407 round, 180, 200, ACK,
// BYE from the caller and its 200. The siptest helpers fail the test if
// any of it does not happen.
func answeredCall(t *testing.T, caller, callee *siptest.Phone, callID string) {
	t.Helper()
	c := siptest.Dial(t, caller, callee, "1002", callID)
	ok := c.Answer()
	c.Hangup(ok, true)
}

// ---- checks -------------------------------------------------------------

// event is the first copy of one event id.
type event struct {
	id, typ string
	body    map[string]any
}

// duplicate is a second copy of an event: where its first copy and it
// are in the delivery order.
type duplicate struct {
	id          string
	first, copy int
}

// dedupe checks every message's headers, returns the first copy of each
// event id in delivery order and the duplicates, and fails on a duplicate
// whose subject or payload differs from the first copy.
func dedupe(t *testing.T, msgs []rmsg) (first []event, dups []duplicate) {
	t.Helper()
	type seenMsg struct {
		m   rmsg
		idx int
	}
	seen := map[string]seenMsg{}
	for i, m := range msgs {
		id, typ := m.header.Get(hdrEventID), m.header.Get(hdrEventType)
		if id == "" {
			t.Errorf("message on %s without %s", m.subject, hdrEventID)
			continue
		}
		if mid := m.header.Get(hdrMsgID); mid != id {
			t.Errorf("event %s: %s = %q", id, hdrMsgID, mid)
		}
		if m.subject != "routr."+typ {
			t.Errorf("event %s: subject %s, %s %q", id, m.subject, hdrEventType, typ)
		}
		if prev, ok := seen[id]; ok {
			dups = append(dups, duplicate{id: id, first: prev.idx, copy: i})
			if prev.m.subject != m.subject || !bytes.Equal(prev.m.data, m.data) {
				t.Errorf("event %s delivered twice with different content:\n%s %s\n%s %s", id, prev.m.subject, prev.m.data, m.subject, m.data)
			}
			continue
		}
		seen[id] = seenMsg{m, i}
		var body map[string]any
		if err := json.Unmarshal(m.data, &body); err != nil {
			t.Errorf("event %s: payload %q: %v", id, m.data, err)
		}
		first = append(first, event{id: id, typ: typ, body: body})
	}
	return first, dups
}

// checkEvents checks that events (first copies, in delivery order) are
// exactly: registrations endpoint.registered of sip:1002@sip.local, and
// for each call of callIDs one call.started, one call.answered and one
// call.ended (NORMAL_CLEARING), in that order; nothing else.
func checkEvents(t *testing.T, events []event, registrations int, callIDs []string) {
	t.Helper()
	want := map[string]bool{}
	for _, id := range callIDs {
		want[id] = true
	}
	perCall := map[string][]string{}
	regs := 0
	for _, ev := range events {
		switch ev.typ {
		case "endpoint.registered":
			regs++
			if ev.body["aor"] != "sip:1002@sip.local" {
				t.Errorf("endpoint.registered aor %v", ev.body["aor"])
			}
		case "call.started", "call.answered", "call.ended":
			cid, _ := ev.body["callId"].(string)
			if !want[cid] {
				t.Errorf("%s for unknown call %q", ev.typ, cid)
				continue
			}
			perCall[cid] = append(perCall[cid], ev.typ)
			if ev.typ == "call.ended" && ev.body["hangupCause"] != "NORMAL_CLEARING" {
				t.Errorf("call %s ended with %v", cid, ev.body["hangupCause"])
			}
		default:
			t.Errorf("unexpected event %s %v", ev.typ, ev.body)
		}
	}
	if regs != registrations {
		t.Errorf("%d endpoint.registered events, want %d", regs, registrations)
	}
	wantSeq := []string{"call.started", "call.answered", "call.ended"}
	bad := 0
	for _, id := range callIDs {
		if got := perCall[id]; !slices.Equal(got, wantSeq) {
			bad++
			if bad <= 10 {
				t.Errorf("call %s: events %v, want %v", id, got, wantSeq)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d calls without exactly one start, answer and end in order", bad, len(callIDs))
	}
	if wantN := registrations + eventsPerCall*len(callIDs); len(events) != wantN {
		t.Errorf("%d distinct events, want %d", len(events), wantN)
	}
}

// ---- the tests ----------------------------------------------------------

// TestEventsNATSDownAtStart: the edge starts with nothing listening on its
// NATS port, serves SIP, and keeps the events; once a NATS server starts
// there, every one of them arrives, once, in order.
func TestEventsNATSDownAtStart(t *testing.T) {
	ns := newTestNATS(t, "")
	e := startNATSEdge(t, ns.url())
	caller, callee := phones(t, e)
	var ids []string
	for i := range 3 {
		id := fmt.Sprintf("e2e-nats-down-%d", i)
		answeredCall(t, caller, callee, id)
		ids = append(ids, id)
	}
	// Everything produced so far is kept, nothing is published or dropped.
	e.waitQueued(t, 1+eventsPerCall*len(ids))
	if m := e.metrics(t); m["routr_events_nats_connected"] != 0 || m["routr_events_published_total{"+eventsPublisher+"}"] != 0 {
		t.Fatalf("with no NATS server: connected %v, published %v", m["routr_events_nats_connected"], m["routr_events_published_total{"+eventsPublisher+"}"])
	}
	e.checkNoDrops(t)

	ns.start(false)
	sub := subscribe(t, ns.url())
	ns.openGate()

	// One more call once NATS is there: live and queued events mix.
	id := "e2e-nats-down-live"
	answeredCall(t, caller, callee, id)
	ids = append(ids, id)

	want := 1 + eventsPerCall*len(ids)
	msgs := sub.waitDistinct(t, want)
	first, dups := dedupe(t, msgs)
	// The edge never had a connection before: nothing can be re-sent.
	if len(dups) != 0 {
		t.Errorf("%d duplicates on a first connection: %v", len(dups), dups)
	}
	checkEvents(t, first, 1, ids)
	e.waitPublished(t, want)
	e.checkNoDrops(t)
	if ns.gate.edgeConnections() == 0 {
		t.Fatalf("the gate never saw the edge's connection (NATS client name is not %q?)", edgeClientName)
	}
}

// outageRun makes n sequential calls; after a third it stops the NATS
// server, after two thirds it starts it again on the same port. restarted
// runs once the server is back, before the edge may reconnect. It returns
// the call ids. Every call must get its 200 and its BYE's 200 throughout.
func outageRun(t *testing.T, ns *testNATS, e *natsEdge, caller, callee *siptest.Phone, n int, prefix string, stopped, restarted func()) []string {
	t.Helper()
	var ids []string
	for i := range n {
		switch i {
		case n / 3:
			ns.stop()
			stopped()
		case 2 * n / 3:
			// The events of the calls since the stop are all queued
			// (with, maybe, some in flight at the stop): the outage was
			// real. The last one may be produced just after its call.
			e.waitQueuedAtLeast(t, eventsPerCall*(2*n/3-n/3))
			ns.start(false)
			restarted()
			ns.openGate()
		}
		id := fmt.Sprintf("%s-%02d", prefix, i)
		answeredCall(t, caller, callee, id)
		ids = append(ids, id)
	}
	return ids
}

// TestEventsNATSOutageCore: a NATS outage in the middle of a run of calls,
// core NATS. No call suffers, and once NATS is back the subscriber has
// every event; core mode may deliver an event again around a disconnect
// (same id, same payload), never lose one.
func TestEventsNATSOutageCore(t *testing.T) {
	ns := newTestNATS(t, "")
	ns.start(true)
	sub := subscribe(t, ns.url())
	e := startNATSEdge(t, ns.url())
	caller, callee := phones(t, e)

	var before uint64
	var fromOldServer int // messages delivered before the restart
	ids := outageRun(t, ns, e, caller, callee, 30, "e2e-outage-core",
		func() { before = sub.reconnects() },
		func() {
			sub.ready(t, before+1) // resubscribed before the edge gets in
			// The old connection is over and the edge is held at the
			// gate: this is all the old server delivered.
			fromOldServer = len(sub.received())
		})

	sub.waitDistinct(t, 1+eventsPerCall*len(ids))
	e.waitPublished(t, 1+eventsPerCall*len(ids))
	msgs := sub.received()
	first, dups := dedupe(t, msgs)
	t.Logf("core outage: %d messages, %d distinct events, %d duplicates %v (%d delivered before the restart)", len(msgs), len(first), len(dups), dups, fromOldServer)
	// A duplicate can only be an event the old server had read when it
	// stopped, re-sent on the new connection: one copy each side.
	for _, d := range dups {
		if d.first >= fromOldServer || d.copy < fromOldServer {
			t.Errorf("duplicate %s at %d and %d: not re-sent across the restart (at %d)", d.id, d.first, d.copy, fromOldServer)
		}
	}
	checkEvents(t, first, 1, ids)
	e.checkNoDrops(t)
	if ns.gate.edgeConnections() < 2 {
		t.Fatalf("the edge connected %d times through the gate, want 2 (before and after the outage)", ns.gate.edgeConnections())
	}
}

// TestEventsNATSOutageDurable: the same outage in durable mode, with a
// JetStream server whose store survives the restart. The stream holds
// every event exactly once.
func TestEventsNATSOutageDurable(t *testing.T) {
	ns := newTestNATS(t, t.TempDir())
	ns.start(true)
	// A core subscriber as well: it sees every publish, re-sends included,
	// which the stream de-duplicates.
	sub := subscribe(t, ns.url())
	e := startNATSEdge(t, ns.url(), "EVENTS_DURABLE=true")
	caller, callee := phones(t, e)

	var before uint64
	ids := outageRun(t, ns, e, caller, callee, 30, "e2e-outage-js",
		func() { before = sub.reconnects() },
		func() { sub.ready(t, before+1) })
	want := 1 + eventsPerCall*len(ids)
	e.waitPublished(t, want) // every event acked by the stream
	_, resent := dedupe(t, sub.waitDistinct(t, want))
	t.Logf("durable outage: %d events published more than once (core subscriber's view)", len(resent))

	nc, err := nats.Connect(ns.url(), nats.Name("e2e-reader"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	msgs := readStream(t, nc)
	first, dups := dedupe(t, msgs)
	t.Logf("durable outage: %d messages in the stream, %d distinct events", len(msgs), len(first))
	if len(dups) != 0 {
		t.Errorf("stream holds %d duplicate messages, want none: %v", len(dups), dups)
	}
	if len(msgs) != want {
		t.Errorf("stream holds %d messages, want %d", len(msgs), want)
	}
	checkEvents(t, first, 1, ids)
	e.checkNoDrops(t)
}

// ackProxy sits between the edge and the NATS server. Held, it passes what
// the edge sends and drops what the server sends back (PONGs, JetStream
// acks), like a link that fails in one direction; cut then closes its
// connections. So the server has events that the edge cannot know it has,
// and must send again on its next connection.
type ackProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	hold   bool
	conns  []net.Conn
}

func newAckProxy(t *testing.T, target string) *ackProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &ackProxy{ln: ln, target: target}
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.cut()
	})
	return p
}

func (p *ackProxy) url() string { return "nats://" + p.ln.Addr().String() }

func (p *ackProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go func() {
			_, _ = io.Copy(s, c)
			s.Close()
			c.Close()
		}()
		go func() {
			buf := make([]byte, 32*1024)
			for {
				n, err := s.Read(buf)
				p.mu.Lock()
				hold := p.hold
				p.mu.Unlock()
				if n > 0 && !hold {
					if _, err := c.Write(buf[:n]); err != nil {
						break
					}
				}
				if err != nil {
					break
				}
			}
			c.Close()
			s.Close()
		}()
	}
}

func (p *ackProxy) setHold(hold bool) {
	p.mu.Lock()
	p.hold = hold
	p.mu.Unlock()
}

// cut closes every connection made so far and stops holding.
func (p *ackProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns, p.hold = nil, false
}

// TestEventsLostConfirmations: the server gets events but the edge never
// learns it did (its PONGs or acks are lost), then the connection drops.
// The edge must send them again: in core mode the subscriber sees each of
// them twice (same id, same payload), in durable mode the core subscriber
// sees the re-sends while the stream keeps each event once.
func TestEventsLostConfirmations(t *testing.T) {
	for _, durable := range []bool{false, true} {
		name := map[bool]string{false: "core", true: "durable"}[durable]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			store := ""
			if durable {
				store = t.TempDir()
			}
			ns := newTestNATS(t, store)
			ns.start(true)
			sub := subscribe(t, ns.url())
			proxy := newAckProxy(t, fmt.Sprintf("127.0.0.1:%d", ns.port))
			e := startNATSEdge(t, proxy.url(), "EVENTS_DURABLE="+strconv.FormatBool(durable))
			caller, callee := phones(t, e)

			ids := []string{"e2e-lost-" + name + "-0"}
			answeredCall(t, caller, callee, ids[0])
			e.waitPublished(t, 1+eventsPerCall) // confirmed: never sent again
			sub.waitDistinct(t, 1+eventsPerCall)

			// Held: the call's first event reaches the server (and the
			// subscriber); its confirmation does not reach the edge, which
			// sends nothing more on this connection until it times out.
			proxy.setHold(true)
			heldID := "e2e-lost-" + name + "-held"
			answeredCall(t, caller, callee, heldID)
			ids = append(ids, heldID)
			startedID := waitCallEvent(t, sub, heldID, "call.started")
			proxy.cut()

			id := "e2e-lost-" + name + "-after"
			answeredCall(t, caller, callee, id)
			ids = append(ids, id)
			e.waitPublished(t, 1+eventsPerCall*len(ids))

			msgs := sub.waitDistinct(t, 1+eventsPerCall*len(ids))
			first, dups := dedupe(t, msgs)
			checkEvents(t, first, 1, ids)
			copies := map[string]int{}
			for _, d := range dups {
				copies[d.id]++
			}
			if copies[startedID] == 0 {
				t.Errorf("call.started of %s, on the server but unconfirmed when the connection dropped, was not sent again", heldID)
			}
			for _, ev := range first {
				if cid, _ := ev.body["callId"].(string); cid != heldID && copies[ev.id] != 0 {
					t.Errorf("%s of %q (confirmed, or first sent after the drop) delivered %d times", ev.typ, cid, copies[ev.id]+1)
				}
			}
			t.Logf("%s: %d messages, %d distinct events, %d duplicates", name, len(msgs), len(first), len(dups))
			if durable {
				nc, err := nats.Connect(ns.url(), nats.Name("e2e-reader"))
				if err != nil {
					t.Fatal(err)
				}
				defer nc.Close()
				stored := readStream(t, nc)
				sfirst, sdups := dedupe(t, stored)
				if len(sdups) != 0 || len(stored) != len(first) {
					t.Errorf("stream holds %d messages with %d duplicates, want %d and none", len(stored), len(sdups), len(first))
				}
				checkEvents(t, sfirst, 1, ids)
			}
			e.checkNoDrops(t)
		})
	}
}

// waitCallEvent waits until the subscriber has the event typ of call
// callID and returns its id.
func waitCallEvent(t *testing.T, sub *subscriber, callID, typ string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, m := range sub.received() {
			var b struct {
				CallID string `json:"callId"`
			}
			if m.header.Get(hdrEventType) == typ && json.Unmarshal(m.data, &b) == nil && b.CallID == callID {
				return m.header.Get(hdrEventID)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s for %s", typ, callID)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readStream reads the whole events stream with an ordered consumer from
// its first message.
func readStream(t *testing.T, nc *nats.Conn) []rmsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, eventsStream)
	if err != nil {
		t.Fatalf("stream %s: %v", eventsStream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	total := int(info.State.Msgs)
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		t.Fatal(err)
	}
	var out []rmsg
	for len(out) < total {
		batch, err := cons.Fetch(total-len(out), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			out = append(out, rmsg{m.Subject(), m.Headers(), m.Data()})
			n++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatalf("read %d of %d stream messages", len(out), total)
		}
	}
	return out
}

// TestEventsShutdownFlushAfterNATSBack: events queued during an outage;
// NATS is back but the edge has not reconnected yet when it gets SIGTERM.
// It reconnects within its grace period, publishes them all and exits 0.
func TestEventsShutdownFlushAfterNATSBack(t *testing.T) {
	ns := newTestNATS(t, "")
	ns.start(true)
	sub := subscribe(t, ns.url())
	e := startNATSEdge(t, ns.url(), "LOG_LEVEL=info")
	caller, callee := phones(t, e)
	ids := []string{"e2e-flush-0"}
	answeredCall(t, caller, callee, ids[0])
	e.waitPublished(t, 1+eventsPerCall) // nothing in flight at the stop

	before := sub.reconnects()
	ns.stop()
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("e2e-flush-%d", i)
		answeredCall(t, caller, callee, id)
		ids = append(ids, id)
	}
	e.waitQueued(t, eventsPerCall*3)

	ns.start(false) // the edge is held until after SIGTERM
	sub.ready(t, before+1)
	if err := e.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitLog(t, e, "stopping: flushing events")
	ns.openGate()
	if err := e.wait(20 * time.Second); err != nil {
		t.Fatalf("edge exit: %v; log:\n%s", err, e.log)
	}
	// The process is gone: what the server did not take before it exited
	// can never arrive.
	msgs := sub.waitDistinct(t, 1+eventsPerCall*len(ids))
	first, dups := dedupe(t, msgs)
	if len(dups) != 0 {
		t.Errorf("%d duplicates (nothing was in flight at the outage): %v", len(dups), dups)
	}
	checkEvents(t, first, 1, ids)
	log := e.log.String()
	if strings.Contains(log, "not published before shutdown") || strings.Contains(log, "events not all flushed") {
		t.Errorf("edge reports unflushed events; log:\n%s", log)
	}
	stop, reconnect := strings.Index(log, "stopping: flushing events"), strings.LastIndex(log, "events publisher reconnected to NATS")
	if reconnect < stop {
		t.Errorf("the edge did not reconnect after SIGTERM (reconnect at %d, stop at %d); log:\n%s", reconnect, stop, log)
	}
}

// TestEventsShutdownNATSAway: NATS is still away at SIGTERM. The edge
// gives up on the queued events after its grace period, says so, and
// still exits 0. Two cases: NATS was never there, and NATS went away.
func TestEventsShutdownNATSAway(t *testing.T) {
	for _, wasUp := range []bool{false, true} {
		name := map[bool]string{false: "never-up", true: "went-away"}[wasUp]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ns := newTestNATS(t, "")
			if wasUp {
				ns.start(true)
			}
			e := startNATSEdge(t, ns.url(), "LOG_LEVEL=info")
			caller, callee := phones(t, e)
			if wasUp {
				e.waitPublished(t, 1) // the registration went out
				ns.stop()
			}
			answeredCall(t, caller, callee, "e2e-away-"+name)
			queued := eventsPerCall
			if !wasUp {
				queued++ // the registration too
			}
			e.waitQueued(t, queued)

			start := time.Now()
			if err := e.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			// A guard against a hang, well beyond the 5s grace period.
			if err := e.wait(30 * time.Second); err != nil {
				t.Fatalf("edge exit: %v; log:\n%s", err, e.log)
			}
			t.Logf("%s: exited 0 %s after SIGTERM", name, time.Since(start).Round(time.Millisecond))
			logs := e.log.String()
			for _, want := range [][]string{
				{`"msg":"stopping: flushing events"`},
				{`"msg":"events not all flushed"`},
				{`"msg":"events not published before shutdown"`, `"publisher":"nats"`, fmt.Sprintf(`"dropped":%d`, queued)},
			} {
				if !logHasLine(logs, want...) {
					t.Errorf("log has no line with %q:\n%s", want, logs)
				}
			}
		})
	}
}

// waitLog waits until the edge's log contains s.
func waitLog(t *testing.T, e *natsEdge, s string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(e.log.String(), s) {
		if e.exited() || time.Now().After(deadline) {
			t.Fatalf("log lacks %q; log:\n%s", s, e.log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logHasLine reports whether one line of logs contains every one of parts.
func logHasLine(logs string, parts ...string) bool {
	for _, line := range strings.Split(logs, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}
