package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// These tests run a real NATS server (nats-server/v2, in process) on a
// loopback port, stop and restart it on the same port.

func startServer(t *testing.T, o EmbeddedOptions) *EmbeddedServer {
	t.Helper()
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	s, err := StartEmbedded(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// gate is the publisher's dialer: closed, it refuses to connect, so a test
// can let a subscriber in first after a server (re)start; cut drops the
// connections it made, like a network failure.
type gate struct {
	mu    sync.Mutex
	open  bool
	conns []net.Conn
}

func (g *gate) Dial(network, address string) (net.Conn, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.open {
		return nil, errors.New("gate closed")
	}
	c, err := net.DialTimeout(network, address, time.Second)
	if err == nil {
		g.conns = append(g.conns, c)
	}
	return c, err
}

func (g *gate) set(open bool) {
	g.mu.Lock()
	g.open = open
	g.mu.Unlock()
}

func (g *gate) cut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.conns {
		c.Close()
	}
	g.conns = nil
}

// collector subscribes to a subject and keeps every message, in order.
type collector struct {
	mu   sync.Mutex
	msgs []*nats.Msg
	nc   *nats.Conn
}

func collect(t *testing.T, url, subject string) *collector {
	t.Helper()
	c := &collector{}
	nc, err := nats.Connect(url, nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	c.nc = nc
	if _, err := nc.Subscribe(subject, func(m *nats.Msg) {
		c.mu.Lock()
		c.msgs = append(c.msgs, m)
		c.mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	c.ready(t)
	t.Cleanup(nc.Close)
	return c
}

// ready waits until the subscription is known to the server.
func (c *collector) ready(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c.nc.IsConnected() && c.nc.FlushTimeout(time.Second) == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("subscriber not connected")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (c *collector) ids() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.msgs))
	for i, m := range c.msgs {
		out[i] = m.Header.Get(HeaderEventID)
	}
	return out
}

// waitUnique waits until n distinct event ids arrived.
func (c *collector) waitUnique(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		seen := map[string]bool{}
		for _, id := range c.ids() {
			seen[id] = true
		}
		if len(seen) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("received %d distinct events, want %d", len(seen), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkDelivery checks that got holds every id of want, first copies in
// order, and returns the number of duplicates.
func checkDelivery(t *testing.T, got, want []string) (duplicates int) {
	t.Helper()
	seen := map[string]bool{}
	var first []string
	for _, id := range got {
		if seen[id] {
			duplicates++
			continue
		}
		seen[id] = true
		first = append(first, id)
	}
	if !slices.Equal(first, want) {
		t.Errorf("received %d distinct events (of %d), not all or not in order", len(first), len(want))
	}
	return duplicates
}

type natsFixture struct {
	pub   *NATSPublisher
	queue *Queue
	gate  *gate
	reg   *prometheus.Registry
	stop  func()
}

func newNATSFixture(t *testing.T, url string, bound int) *natsFixture {
	t.Helper()
	f := &natsFixture{gate: &gate{open: true}, reg: prometheus.NewRegistry()}
	pub, err := NewNATSPublisher(NATSOptions{
		ConnOptions: ConnOptions{URL: url, ReconnectWait: 20 * time.Millisecond, Logger: quiet, Registerer: f.reg,
			Extra: []nats.Option{nats.SetCustomDialer(f.gate)}},
		Subject: "routr",
	})
	if err != nil {
		t.Fatal(err)
	}
	f.pub = pub
	f.queue = newTestQueue(t, pub, QueueOptions{Name: "nats", Bound: bound, Registerer: f.reg, AttemptTimeout: time.Second})
	f.stop = run(t, f.queue)
	t.Cleanup(func() {
		closeQueue(t, f.queue)
		f.stop()
		pub.Close()
	})
	return f
}

func events(n int) ([]Event, []string) {
	var evs []Event
	var ids []string
	for i := range n {
		e := EndpointRegistered(fmt.Sprintf("sip:%d@test", i), 60, nil, t0)
		evs = append(evs, e)
		ids = append(ids, e.ID)
	}
	return evs, ids
}

func TestNATSPublishWithHeaders(t *testing.T) {
	srv := startServer(t, EmbeddedOptions{NoJetStream: true})
	defer srv.Close()
	sub := collect(t, srv.ClientURL(), "routr.>")
	f := newNATSFixture(t, strings.TrimPrefix(srv.ClientURL(), "nats://"), 0) // host:port form

	sent := []Event{}
	for _, e := range fixtures() {
		e.ID = NewID()
		sent = append(sent, e)
		f.queue.Publish(e)
	}
	sub.waitUnique(t, len(sent))
	sub.mu.Lock()
	defer sub.mu.Unlock()
	for i, m := range sub.msgs {
		e := sent[i]
		if m.Subject != "routr."+e.Type {
			t.Errorf("subject %q, want routr.%s", m.Subject, e.Type)
		}
		if !bytes.Equal(m.Data, e.Body) {
			t.Errorf("body %s, want %s", m.Data, e.Body)
		}
		for h, want := range map[string]string{HeaderMsgID: e.ID, HeaderEventID: e.ID, HeaderEventType: e.Type} {
			if got := m.Header.Get(h); got != want {
				t.Errorf("header %s = %q, want %q", h, got, want)
			}
		}
	}
	if !f.pub.Connected() {
		t.Error("Connected() = false")
	}
}

// TestNATSUnreachableAtStart: NATS is down when the publisher starts; the
// events produced meanwhile are queued and all arrive, in order, exactly
// once, when a server starts later on that port.
func TestNATSUnreachableAtStart(t *testing.T) {
	addr := freeAddr(t)
	f := newNATSFixture(t, "nats://"+addr, 0)
	f.gate.set(false)
	evs, ids := events(1000)
	for _, e := range evs {
		f.queue.Publish(e)
	}
	if f.pub.Connected() || f.queue.Len() != 1000 {
		t.Fatalf("connected %v with %d queued before the server exists", f.pub.Connected(), f.queue.Len())
	}

	srv := startServer(t, EmbeddedOptions{Addr: addr, NoJetStream: true})
	defer srv.Close()
	sub := collect(t, srv.ClientURL(), "routr.>")
	f.gate.set(true)
	sub.waitUnique(t, len(ids))
	time.Sleep(100 * time.Millisecond) // let any duplicate show up
	if d := checkDelivery(t, sub.ids(), ids); d != 0 {
		t.Errorf("%d duplicates", d)
	}
	if n := counterValue(t, f.queue.published); n != 1000 {
		t.Errorf("published_total = %v", n)
	}
}

// TestNATSServerRestart stops the server while events are being produced
// and starts a new one on the same port: every event arrives, in order.
// Duplicates can happen (a batch written before the drop whose
// confirmation was lost is sent again); the test reports their number.
func TestNATSServerRestart(t *testing.T) {
	addr := freeAddr(t)
	srv := startServer(t, EmbeddedOptions{Addr: addr, NoJetStream: true})
	sub := collect(t, srv.ClientURL(), "routr.>")
	f := newNATSFixture(t, srv.ClientURL(), 0)
	evs, ids := events(3000)

	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for i, e := range evs {
			f.queue.Publish(e)
			if i%10 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	sub.waitUnique(t, 500)

	// Drop the publisher's connection mid-stream and keep it out, let the
	// server finish with what it read, then restart the server.
	f.gate.set(false)
	f.gate.cut()
	for deadline := time.Now().Add(10 * time.Second); srv.s.NumClients() > 1 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	sub.ready(t)
	srv.Close()
	time.Sleep(50 * time.Millisecond)
	srv = startServer(t, EmbeddedOptions{Addr: addr, NoJetStream: true})
	defer srv.Close()
	sub.ready(t)
	f.gate.set(true)

	<-produced
	sub.waitUnique(t, len(ids))
	time.Sleep(100 * time.Millisecond)
	d := checkDelivery(t, sub.ids(), ids)
	t.Logf("core NATS across a server restart: %d events, %d duplicates", len(ids), d)
	if d > DefaultMaxBatch {
		t.Errorf("%d duplicates: more than one batch was sent twice", d)
	}
}

// TestNATSOverflow: NATS is away and the queue holds 100: of 150 events the
// 100 oldest are published when it is back, the 50 newest are dropped and
// counted.
func TestNATSOverflow(t *testing.T) {
	addr := freeAddr(t)
	f := newNATSFixture(t, "nats://"+addr, 100)
	f.gate.set(false)
	evs, ids := events(150)
	for _, e := range evs {
		f.queue.Publish(e)
	}
	if n := counterValue(t, f.queue.dropOverflow); n != 50 {
		t.Errorf("dropped overflow = %v, want 50", n)
	}
	srv := startServer(t, EmbeddedOptions{Addr: addr, NoJetStream: true})
	defer srv.Close()
	sub := collect(t, srv.ClientURL(), "routr.>")
	f.gate.set(true)
	sub.waitUnique(t, 100)
	time.Sleep(100 * time.Millisecond)
	if d := checkDelivery(t, sub.ids(), ids[:100]); d != 0 {
		t.Errorf("%d duplicates", d)
	}
}

// TestNATSCloseFlushes: events queued when Close is called are published
// before it returns.
func TestNATSCloseFlushes(t *testing.T) {
	srv := startServer(t, EmbeddedOptions{NoJetStream: true})
	defer srv.Close()
	sub := collect(t, srv.ClientURL(), "routr.>")
	reg := prometheus.NewRegistry()
	p, err := NewPipeline(Config{NATSEnabled: true, NATSURL: srv.ClientURL(), Subject: "routr"}, PipelineOptions{Registerer: reg, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, p)
	evs, ids := events(2000)
	for _, e := range evs {
		p.Publish(e)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close = %v", err)
	}
	stop()
	// Close returned after the server confirmed every event; the
	// subscriber gets them a moment later.
	sub.waitUnique(t, len(ids))
	if d := checkDelivery(t, sub.ids(), ids); d != 0 {
		t.Errorf("%d duplicates", d)
	}
}

// TestPipelineEmbeddedInMemory: with PipelineOptions.Embedded the
// publisher reaches the in-process server through memory, not TCP: the
// URL it is given leads nowhere, and every event still arrives (with its
// headers) at a subscriber connected over TCP.
func TestPipelineEmbeddedInMemory(t *testing.T) {
	srv := startServer(t, EmbeddedOptions{NoJetStream: true})
	defer srv.Close()
	sub := collect(t, srv.ClientURL(), "routr.>")
	nowhere := "nats://" + freeAddr(t) // nothing listens there
	p, err := NewPipeline(Config{NATSEnabled: true, NATSURL: nowhere, Subject: "routr"},
		PipelineOptions{Registerer: prometheus.NewRegistry(), Logger: quiet, Embedded: srv})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, p)
	evs, ids := events(500)
	for _, e := range evs {
		p.Publish(e)
	}
	sub.waitUnique(t, len(ids))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close = %v", err)
	}
	stop()
	if d := checkDelivery(t, sub.ids(), ids); d != 0 {
		t.Errorf("%d duplicates", d)
	}
}

// TestJetStreamRestart: durable mode across a server restart (same store):
// the stream holds every event exactly once, in order.
func TestJetStreamRestart(t *testing.T) {
	addr, store := freeAddr(t), t.TempDir()
	srv := startServer(t, EmbeddedOptions{Addr: addr, StoreDir: store})
	reg := prometheus.NewRegistry()
	pub, err := NewJetStreamPublisher(JetStreamOptions{
		ConnOptions: ConnOptions{URL: srv.ClientURL(), ReconnectWait: 20 * time.Millisecond, Logger: quiet, Registerer: reg},
		Subject:     "routr", Stream: "TEST_EVENTS", AckTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	q := newTestQueue(t, pub, QueueOptions{Name: "jetstream", Registerer: reg, AttemptTimeout: 2 * time.Second})
	stop := run(t, q)
	evs, ids := events(3000)

	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for i, e := range evs {
			q.Publish(e)
			if i%10 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	for deadline := time.Now().Add(30 * time.Second); counterValue(t, q.published) < 500; {
		if time.Now().After(deadline) {
			t.Fatal("no progress before the restart")
		}
		time.Sleep(5 * time.Millisecond)
	}
	srv.Close() // abrupt: acks in flight are lost
	srv = startServer(t, EmbeddedOptions{Addr: addr, StoreDir: store})
	defer srv.Close()
	<-produced
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := q.Close(ctx); err != nil {
		t.Fatalf("Close = %v", err)
	}
	stop()

	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	stream, err := js.Stream(ctx, "TEST_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	info, _ := stream.Info(ctx)
	if info.State.Msgs != uint64(len(ids)) {
		t.Errorf("stream holds %d messages, want %d", info.State.Msgs, len(ids))
	}
	var got []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		if m.Header.Get(HeaderMsgID) != m.Header.Get(HeaderEventID) || m.Subject != "routr."+TypeEndpointRegistered {
			t.Errorf("seq %d: subject %s headers %v", seq, m.Subject, m.Header)
		}
		got = append(got, m.Header.Get(HeaderMsgID))
	}
	if d := checkDelivery(t, got, ids); d != 0 {
		t.Errorf("%d duplicates in the stream", d)
	}
	t.Logf("JetStream across a server restart: %d events stored once each; %v failed attempts retried",
		len(got), counterValue(t, q.failures))
}

func TestSubscribe(t *testing.T) {
	srv := startServer(t, EmbeddedOptions{NoJetStream: true})
	defer srv.Close()
	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Subscribe(ctx, srv.ClientURL(), "routr.>", &out) }()

	f := newNATSFixture(t, srv.ClientURL(), 0)
	e := fixtures()[TypeEndpointUnregistered]
	want := "routr.endpoint.unregistered " + string(e.Body) + "\n"
	// Subscribe may not be subscribed yet: publish until a line shows up.
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(out.String(), want); {
		if time.Now().After(deadline) {
			t.Fatalf("output %q", out.String())
		}
		f.queue.Publish(e)
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Subscribe = %v", err)
	}
	for _, line := range strings.SplitAfter(out.String(), "\n") {
		if line != "" && line != want {
			t.Errorf("line %q", line)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestPipelineConsole(t *testing.T) {
	var out syncBuffer
	p, err := NewPipeline(Config{ConsoleEnabled: true}, PipelineOptions{Logger: slog.New(slog.NewJSONHandler(&out, nil))})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, p)
	e := fixtures()[TypeCallEnded]
	p.Publish(e)
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	stop()
	if !strings.Contains(out.String(), `"msg":"event","type":"call.ended","id":"`+e.ID+`"`) {
		t.Errorf("console output %s", out.String())
	}
}

func TestPipelineDisabledDiscards(t *testing.T) {
	p, err := NewPipeline(Config{}, PipelineOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	p.Publish(ev(1))
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestParseNATSURLs(t *testing.T) {
	urls, err := ParseNATSURLs("nats1:4222, nats://nats2:4222")
	if err != nil || !slices.Equal(urls, []string{"nats://nats1:4222", "nats://nats2:4222"}) {
		t.Errorf("ParseNATSURLs = %v, %v", urls, err)
	}
}

func TestEmbeddedBadAddr(t *testing.T) {
	for _, addr := range []string{"nope", "127.0.0.1:x", "127.0.0.1:70000"} {
		if _, err := StartEmbedded(EmbeddedOptions{Addr: addr}); err == nil {
			t.Errorf("StartEmbedded(%q) = nil error", addr)
		}
	}
}
