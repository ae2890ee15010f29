package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/routr-go/routr/internal/natstest"
	"github.com/routr-go/routr/internal/siptest"
)

// clusterEdge is one routr binary of a cluster, restartable on the same
// ports.
type clusterEdge struct {
	name     string
	sipPort  int
	httpAddr string
	env      []string
	log      *syncBuffer
	cmd      *exec.Cmd
	done     chan struct{}
	err      error
}

func (e *clusterEdge) sipAddr() string { return fmt.Sprintf("127.0.0.1:%d", e.sipPort) }

// newClusterEdges prepares n edges sharing the NATS cluster at urls, with
// MAX_CALL_DURATION maxCall, and starts them.
func newClusterEdges(t *testing.T, n int, urls string, maxCall time.Duration) []*clusterEdge {
	t.Helper()
	var out []*clusterEdge
	for i := range n {
		dir := t.TempDir()
		e := &clusterEdge{name: fmt.Sprintf("edge%d", i), sipPort: freePort(t),
			httpAddr: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
		cfg := fmt.Sprintf(`kind: EdgePort
apiVersion: v2beta1
ref: %s
spec:
  bindAddr: 127.0.0.1
  transport:
    - protocol: udp
      port: %d
    - protocol: tcp
      port: %d
`, e.name, e.sipPort, e.sipPort)
		cfgPath := filepath.Join(dir, "edgeport.yaml")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		e.env = append(os.Environ(),
			"CONFIG_PATH="+cfgPath,
			"PATH_TO_RESOURCES="+filepath.Join(repoRoot, "config", "resources"),
			"HOSTNAME="+e.name,
			"EMBEDDED_NATS=false",
			"NATS_PUBLISHER_ENABLED=true",
			"NATS_PUBLISHER_URL="+urls,
			"EVENTS_DURABLE=true",
			"CONSOLE_PUBLISHER_ENABLED=false",
			"LOCATION_STORE=jetstream",
			"CLUSTER_SECRET=e2e-cluster-secret-0123456789",
			"AUTH_SECRET=e2e-auth-secret",
			fmt.Sprintf("MAX_CALL_DURATION=%ds", int(maxCall/time.Second)),
			"HTTP_ADDR="+e.httpAddr,
			"ENABLE_HEALTHCHECKS=true",
			"ENABLE_PPROF=true", // logBacklog reads the goroutines
			"LOG_LEVEL=warn",
		)
		if os.Getenv("E2E_CLUSTER_DEBUG") != "" {
			e.env = append(e.env, "LOG_LEVEL=debug")
		}
		e.start(t)
		t.Cleanup(func() {
			e.stop(t)
			if t.Failed() {
				t.Logf("%s log:\n%s", e.name, e.log)
			}
		})
		out = append(out, e)
	}
	return out
}

// start starts the edge and waits until it is healthy.
func (e *clusterEdge) start(t *testing.T) {
	t.Helper()
	if e.log == nil {
		e.log = &syncBuffer{} // kept across restarts
	}
	e.done = make(chan struct{})
	e.cmd = exec.Command(binary)
	e.cmd.Env = e.env
	e.cmd.Stdout, e.cmd.Stderr = e.log, e.log
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { e.err = e.cmd.Wait(); close(e.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := http.Get("http://" + e.httpAddr + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		if e.exited() || time.Now().After(deadline) {
			t.Fatalf("%s not healthy; log:\n%s", e.name, e.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *clusterEdge) exited() bool {
	select {
	case <-e.done:
		return true
	default:
		return false
	}
}

// stop ends the edge with SIGTERM and expects a clean exit.
func (e *clusterEdge) stop(t *testing.T) {
	if e.cmd == nil || e.exited() {
		return
	}
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.done:
		if e.err != nil {
			t.Errorf("%s exited with %v; log:\n%s", e.name, e.err, e.log)
		}
	case <-time.After(30 * time.Second):
		_ = e.cmd.Process.Kill()
		<-e.done
		t.Errorf("%s did not stop on SIGTERM; log:\n%s", e.name, e.log)
	}
	if strings.Contains(e.log.String(), "DATA RACE") {
		t.Errorf("race detected in %s:\n%s", e.name, e.log)
	}
}

// waitMetric waits until the edge's metric name (without labels) has
// value want.
func (e *clusterEdge) waitMetric(t *testing.T, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if v, ok := e.metric(name); ok && v == want {
			return
		}
		if time.Now().After(deadline) {
			v, _ := e.metric(name)
			t.Fatalf("%s: %s = %v, want %v", e.name, name, v, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (e *clusterEdge) metric(name string) (float64, bool) {
	res, err := http.Get("http://" + e.httpAddr + "/metrics")
	if err != nil {
		return 0, false
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

// waitBindings waits until every edge's copy of the bucket holds n
// bindings: a binding written through one edge reaches the others within
// milliseconds, but a call placed in that moment would find nobody.
func waitBindings(t *testing.T, edges []*clusterEdge, n float64) {
	t.Helper()
	for _, e := range edges {
		e.waitMetric(t, "routr_location_cached_bindings", n)
	}
}

// logBacklog logs what the edge still holds of the events (ledger queue,
// events queue, ledger outcomes): when a call's events are missing after
// the edge is killed, this tells whether they were still in it.
func (e *clusterEdge) logBacklog(t *testing.T) {
	t.Helper()
	res, err := http.Get("http://" + e.httpAddr + "/metrics")
	if err != nil {
		t.Logf("%s metrics: %v", e.name, err)
		return
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var lines []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "routr_cluster_ledger_") || strings.HasPrefix(line, "routr_events_queued") ||
			strings.HasPrefix(line, "routr_events_published_total") || strings.HasPrefix(line, "routr_calls_active") {
			lines = append(lines, line)
		}
	}
	t.Logf("%s before it is killed: %s", e.name, strings.Join(lines, "; "))
	if v, ok := e.metric("routr_cluster_ledger_queue_length"); ok && v > 0 {
		// Where the ledger's workers wait (ENABLE_PPROF is on).
		res, err := http.Get("http://" + e.httpAddr + "/debug/pprof/goroutine?debug=2")
		if err != nil {
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		for _, g := range strings.Split(string(b), "\n\n") {
			if strings.Contains(g, "cluster.(*Ledger)") {
				t.Logf("%s ledger goroutine:\n%s", e.name, g)
			}
		}
	}
}

// waitSent waits until the edge holds no event any more (ledger queue and
// events queue empty): the calls it handled so far are accounted for, so
// a crash now must lose none of them. Events still queued inside a
// process that is killed are lost with it; that is not what the test is
// about. A queue that never empties is a stuck ledger: its goroutines are
// logged.
func (e *clusterEdge) waitSent(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		l, ok1 := e.metricSum("routr_cluster_ledger_queue_length")
		q, ok2 := e.metricSum("routr_events_queued")
		if ok1 && ok2 && l == 0 && q == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.logBacklog(t)
			t.Fatalf("%s still holds events after 30s: ledger queue %v, events queue %v", e.name, l, q)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// metricSum adds up every series of the metric name, whatever its labels.
func (e *clusterEdge) metricSum(name string) (float64, bool) {
	res, err := http.Get("http://" + e.httpAddr + "/metrics")
	if err != nil {
		return 0, false
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	sum, found := 0.0, false
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		f, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, false
		}
		sum, found = sum+f, true
	}
	return sum, found
}

// kill ends the edge at once, as a crash would.
func (e *clusterEdge) kill() {
	_ = e.cmd.Process.Kill()
	<-e.done
}

func phoneAt(t *testing.T, transport, user string, e *clusterEdge) *siptest.Phone {
	t.Helper()
	p, err := siptest.NewPhone(transport, user, "sip.local", "1234", e.sipAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// startEventsStream creates the events stream replicated on three nodes
// before the edges start, so that one node down stops no publishing.
func startEventsStream(t *testing.T, urls string) *nats.Conn {
	t.Helper()
	return createEventsStream(t, urls, 3)
}

// createEventsStream creates the events stream with replicas and returns a
// connection to read it.
func createEventsStream(t *testing.T, urls string, replicas int) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: eventsStream, Subjects: []string{"routr.>"},
		Storage: jetstream.FileStorage, Replicas: replicas, Duplicates: 2 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	return nc
}

// callEvents reads the events stream and returns, per Call-ID, the types
// of its distinct events in order, and the call.ended bodies.
func callEvents(t *testing.T, nc *nats.Conn) (map[string][]string, map[string]map[string]any) {
	t.Helper()
	var msgs []rmsg
	for attempt := 0; ; attempt++ {
		var err error
		if msgs, err = readAll(nc); err == nil {
			break
		}
		if attempt == 20 {
			t.Fatalf("read the events stream: %v", err)
		}
		time.Sleep(500 * time.Millisecond) // JetStream electing a leader
	}
	first, _ := dedupe(t, msgs)
	per, ended := map[string][]string{}, map[string]map[string]any{}
	for _, ev := range first {
		cid, _ := ev.body["callId"].(string)
		if cid == "" {
			continue
		}
		per[cid] = append(per[cid], ev.typ)
		if ev.typ == "call.ended" {
			if prev := ended[cid]; prev != nil {
				t.Logf("call %s ended twice:\n%v\n%v", cid, prev, ev.body)
			}
			ended[cid] = ev.body
		}
	}
	return per, ended
}

// readAll reads the events stream from its first message, returning an
// error rather than failing while the NATS cluster recovers.
func readAll(nc *nats.Conn) ([]rmsg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	st, err := js.Stream(ctx, eventsStream)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, err
	}
	total := int(info.State.Msgs)
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return nil, err
	}
	var out []rmsg
	for len(out) < total {
		batch, err := cons.Fetch(total-len(out), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, err
		}
		n := 0
		for m := range batch.Messages() {
			out = append(out, rmsg{m.Subject(), m.Headers(), m.Data()})
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("read %d of %d stream messages", len(out), total)
		}
	}
	return out, nil
}

// waitCallEvents waits until every call of ids has its call.ended.
func waitCallEvents(t *testing.T, nc *nats.Conn, ids []string) (map[string][]string, map[string]map[string]any) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, ended := callEvents(t, nc)
		var missing []string
		for _, id := range ids {
			if ended[id] == nil {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			time.Sleep(500 * time.Millisecond) // a duplicate would arrive now
			return callEvents(t, nc)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d calls without call.ended: %v", len(missing), len(ids), missing)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestClusterRegisterHereCallThere registers phones with one edge and
// calls them through the others, over UDP and over TCP (a connection only
// the first edge holds): every call goes through, with one call.started
// and one call.ended.
func TestClusterRegisterHereCallThere(t *testing.T) {
	cl := natstest.StartCluster(t, 3)
	nc := startEventsStream(t, cl.URLs())
	edges := newClusterEdges(t, 3, cl.URLs(), 0)

	var ids []string
	for _, tp := range []string{"udp", "tcp"} {
		callee := phoneAt(t, tp, "1002", edges[0])
		if res, err := callee.Register(600, ""); err != nil || res.StatusCode != 200 {
			t.Fatalf("%s REGISTER: %v %v", tp, res, err)
		}
		waitBindings(t, edges, 1)
		for i, via := range edges[1:] {
			caller := phoneAt(t, "udp", "1001", via)
			id := fmt.Sprintf("cluster-%s-%d", tp, i)
			ids = append(ids, id)
			c := siptest.Dial(t, caller, callee, "1002", id)
			ok := c.Answer()
			c.Hangup(ok, i == 0) // the caller hangs up, then the callee
		}
		if res, err := callee.Register(0, ""); err != nil || res.StatusCode != 200 {
			t.Fatalf("%s unREGISTER: %v %v", tp, res, err)
		}
	}
	per, _ := waitCallEvents(t, nc, ids)
	for _, id := range ids {
		if got := per[id]; strings.Join(got, ",") != "call.started,call.answered,call.ended" {
			t.Errorf("call %s: events %v", id, got)
		}
	}
}

// TestClusterSurvivesLosses runs calls through a cluster of three edges
// and three NATS nodes while losing parts of it: the edge that holds the
// callee's registration is killed, a NATS node stops and starts again, an
// edge dies in the middle of an answered call (a survivor ends that call
// at the maximum duration), and every edge restarts. The binding stays
// found throughout, and every call has one call.started and one
// call.ended.
func TestClusterSurvivesLosses(t *testing.T) {
	cl := natstest.StartCluster(t, 3)
	nc := startEventsStream(t, cl.URLs())
	const maxCall = 8 * time.Second
	edges := newClusterEdges(t, 3, cl.URLs(), maxCall)

	callee := phoneAt(t, "udp", "1002", edges[0])
	if res, err := callee.Register(600, ""); err != nil || res.StatusCode != 200 {
		t.Fatalf("REGISTER: %v %v", res, err)
	}
	waitBindings(t, edges, 1)
	callers := map[*clusterEdge]*siptest.Phone{}
	caller := func(e *clusterEdge) *siptest.Phone {
		if callers[e] == nil {
			callers[e] = phoneAt(t, "udp", "1001", e)
		}
		return callers[e]
	}
	var ids []string
	seq := 0
	// The callee hangs up every other call while the edge it registered
	// through is up: its requests go there (its outbound proxy).
	calleeEdgeUp := true
	run := func(phase string, through ...*clusterEdge) {
		t.Helper()
		for range 4 {
			for _, e := range through {
				seq++
				id := fmt.Sprintf("loss-%s-%d", phase, seq)
				ids = append(ids, id)
				c := siptest.Dial(t, caller(e), callee, "1002", id)
				ok := c.Answer()
				c.Hangup(ok, !calleeEdgeUp || seq%2 == 0)
			}
		}
	}

	run("all", edges...)
	edges[0].waitSent(t)
	edges[0].kill() // holds the registration
	calleeEdgeUp = false
	// Until the others miss its heartbeats (three seconds), they would
	// still hand it the calls for the phone registered through it.
	for _, e := range edges[1:] {
		e.waitMetric(t, "routr_cluster_instances_up", 2)
	}
	run("edge0-killed", edges[1], edges[2])

	cl.Nodes[0].Stop()
	run("nats-node-down", edges[1], edges[2])
	if err := cl.Nodes[0].Start(); err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitJetStream(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	waitBindings(t, edges[1:], 1) // no binding lost
	run("nats-node-back", edges[1], edges[2])

	// An edge dies with a call up: nobody can send its BYE, so the
	// maximum duration ends it, on a surviving edge, once.
	orphan := "loss-orphan"
	ids = append(ids, orphan)
	c := siptest.Dial(t, caller(edges[1]), callee, "1002", orphan)
	c.Answer()
	edges[1].waitSent(t) // call.started and call.answered have left edge1
	edges[1].kill()
	run("edge1-killed", edges[2])

	// Every edge restarts; the binding is still there: calls reach the
	// callee without a new REGISTER.
	for _, e := range edges {
		e.stop(t)
	}
	for _, e := range edges {
		e.start(t)
	}
	waitBindings(t, edges, 1) // loaded from the bucket before serving
	callers = map[*clusterEdge]*siptest.Phone{}
	calleeEdgeUp = true
	run("restarted", edges...)

	per, ended := waitCallEvents(t, nc, ids)
	for _, id := range ids {
		want := "call.started,call.answered,call.ended"
		if got := strings.Join(per[id], ","); got != want {
			t.Errorf("call %s: events %s, want %s", id, got, want)
		}
	}
	if got := ended[orphan]["hangupCause"]; got != "ALLOTTED_TIMEOUT" {
		t.Errorf("orphaned call ended with %v, want ALLOTTED_TIMEOUT", got)
	}
}

// TestClusterDrainWithdraws sends SIGTERM to an edge that has a call up:
// while it drains (the call holds it), the other edge already counts it
// gone, since a draining edge withdraws its presence when the drain
// starts rather than when SIP stops: the others stop handing it requests
// it would refuse.
func TestClusterDrainWithdraws(t *testing.T) {
	srv := natstest.Single(t)
	edges := newClusterEdges(t, 2, srv.URL(), 0)
	edges[0].env = append(edges[0].env, "DRAIN_TIMEOUT=90s")
	edges[0].stop(t)
	edges[0].start(t)
	edges[1].waitMetric(t, "routr_cluster_instances_up", 2)

	callee := phoneAt(t, "udp", "1002", edges[1])
	if res, err := callee.Register(600, ""); err != nil || res.StatusCode != 200 {
		t.Fatalf("REGISTER: %v %v", res, err)
	}
	waitBindings(t, edges, 1)
	caller := phoneAt(t, "udp", "1001", edges[0])
	c := siptest.Dial(t, caller, callee, "1002", "drain-withdraw")
	ok := c.Answer()

	_ = edges[0].cmd.Process.Signal(syscall.SIGTERM)
	// Without the withdrawal edge0 goes on beating while it drains, and
	// edge1 counts it up until the drain is over (90 s here).
	edges[1].waitMetric(t, "routr_cluster_instances_up", 1)
	if edges[0].exited() {
		t.Fatalf("edge0 stopped before the call ended; log:\n%s", edges[0].log)
	}
	c.Hangup(ok, true) // the dialog still crosses the draining edge
	select {
	case <-edges[0].done:
	case <-time.After(30 * time.Second):
		t.Fatal("edge0 did not finish draining once its call ended")
	}
	if edges[0].err != nil {
		t.Errorf("edge0 exited with %v", edges[0].err)
	}
}
