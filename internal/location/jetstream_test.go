package location

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/routr-go/routr/internal/natstest"
)

var bucketSeq atomic.Int64

// jsStore opens a JetStream store on bucket over its own connection to
// url and runs it until the test ends.
func jsStore(t *testing.T, url, bucket string, o JetStreamOptions) *JetStream {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	o.Conn, o.Bucket = nc, bucket
	if o.MaxAge == 0 {
		o.MaxAge = 24 * time.Hour // the test clock is not the server's
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	j, err := NewJetStream(ctx, o)
	if err != nil {
		nc.Close()
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { j.Run(runCtx) })
	t.Cleanup(func() { stop(); wg.Wait(); nc.Close() })
	return j
}

func newBucket() string { return fmt.Sprintf("loc_%d", bucketSeq.Add(1)) }

// TestJetStreamContract runs the Store contract against a JetStream store
// on a real server. What happens to expired bindings (OnExpire, Len) is
// asynchronous there and is tested apart.
func TestJetStreamContract(t *testing.T) {
	srv := natstest.Single(t)
	for _, tt := range contractCases() {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			clk := newClock()
			j := jsStore(t, srv.URL(), newBucket(), JetStreamOptions{MaxBindings: tt.max, Now: clk.now})
			for i, s := range tt.steps {
				var got any
				var err error
				switch s.op {
				case "put":
					got, err = j.Put(ctx, s.b)
				case "remove":
					got, err = j.Remove(ctx, s.aor, s.con)
				case "removeall":
					got, err = j.RemoveAll(ctx, s.aor)
				case "advance":
					clk.advance(s.by)
					continue
				}
				if !errors.Is(err, s.err) || (s.err == nil && got != s.want) {
					t.Fatalf("step %d %s: got %v, %v; want %v, %v", i, s.op, got, err, s.want, s.err)
				}
			}
			for aor, want := range tt.lookup {
				bs, err := j.Lookup(ctx, aor)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, b := range bs {
					got = append(got, b.Contact)
				}
				if !slices.Equal(got, want) {
					t.Errorf("Lookup(%s) = %v, want %v", aor, got, want)
				}
				if n, _ := j.Count(ctx, aor); n != len(want) {
					t.Errorf("Count(%s) = %d, want %d", aor, n, len(want))
				}
			}
		})
	}
}

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 1000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("not within 10s: %s", what)
}

func contacts(s Store, aor string) []string {
	bs, _ := s.Lookup(context.Background(), aor)
	var out []string
	for _, b := range bs {
		out = append(out, b.Contact)
	}
	return out
}

// TestJetStreamShared checks that instances sharing a bucket see each
// other's writes, keep the CSeq order between them, and that a new
// instance (a restart) loads every binding.
func TestJetStreamShared(t *testing.T) {
	srv := natstest.Single(t)
	ctx := context.Background()
	clk := newClock()
	bucket := newBucket()
	a := jsStore(t, srv.URL(), bucket, JetStreamOptions{Now: clk.now})
	b := jsStore(t, srv.URL(), bucket, JetStreamOptions{Now: clk.now})

	want := bind(alice, c1, "a", 5, time.Hour)
	want.Instance = "sip:10.0.0.1:5060;transport=udp"
	if res, err := a.Put(ctx, want); res != Created || err != nil {
		t.Fatalf("Put on a: %v, %v", res, err)
	}
	eventually(t, "b sees a's binding", func() bool { return slices.Equal(contacts(b, alice), []string{c1}) })
	got, _ := b.Lookup(ctx, alice)
	want.RegisteredAt = clk.now()
	if got[0] != want {
		t.Errorf("b holds %+v\nwant %+v", got[0], want)
	}
	if _, err := b.Put(ctx, bind(alice, c1, "a", 4, time.Hour)); !errors.Is(err, ErrOutOfOrder) {
		t.Errorf("older CSeq through b: %v, want ErrOutOfOrder", err)
	}
	if res, err := b.Put(ctx, bind(alice, c2, "b", 1, time.Hour)); res != Created || err != nil {
		t.Fatalf("Put on b: %v, %v", res, err)
	}
	if ok, err := b.Remove(ctx, alice, c1); !ok || err != nil {
		t.Fatalf("Remove on b: %v, %v", ok, err)
	}
	eventually(t, "a sees b's changes", func() bool { return slices.Equal(contacts(a, alice), []string{c2}) })

	// A third instance starting now (an edge restarting) loads the
	// bucket before it serves.
	c := jsStore(t, srv.URL(), bucket, JetStreamOptions{Now: clk.now})
	if got := contacts(c, alice); !slices.Equal(got, []string{c2}) {
		t.Errorf("restarted instance holds %v, want [%s]", got, c2)
	}
}

// TestJetStreamConcurrentWriters races refreshes of one binding from two
// instances: compare-and-set retries, none is lost or fails.
func TestJetStreamConcurrentWriters(t *testing.T) {
	srv := natstest.Single(t)
	clk := newClock()
	bucket := newBucket()
	stores := []*JetStream{
		jsStore(t, srv.URL(), bucket, JetStreamOptions{Now: clk.now}),
		jsStore(t, srv.URL(), bucket, JetStreamOptions{Now: clk.now}),
	}
	var wg sync.WaitGroup
	var created atomic.Int64
	for g := range 4 {
		wg.Go(func() {
			for i := range 25 {
				res, err := stores[g%2].Put(context.Background(), bind(alice, c1, fmt.Sprintf("g%d", g), uint32(i+1), time.Hour))
				if err != nil {
					t.Error(err)
					return
				}
				if res == Created {
					created.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if created.Load() != 1 {
		t.Errorf("%d Puts created the binding, want 1", created.Load())
	}
}

// TestJetStreamExpiresOnce checks that a binding expiring while three
// instances hold it is deleted from the bucket and reported once.
func TestJetStreamExpiresOnce(t *testing.T) {
	srv := natstest.Single(t)
	ctx := context.Background()
	clk := newClock()
	bucket := newBucket()
	var reported atomic.Int64
	var stores []*JetStream
	for range 3 {
		stores = append(stores, jsStore(t, srv.URL(), bucket, JetStreamOptions{Now: clk.now,
			OnExpire: func(Binding) { reported.Add(1) }}))
	}
	for i := range 20 {
		if _, err := stores[i%3].Put(ctx, bind(fmt.Sprintf("sip:%d@sip.local", i), c1, "a", 1, time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "every copy holds 20", func() bool {
		return stores[0].Len() == 20 && stores[1].Len() == 20 && stores[2].Len() == 20
	})
	clk.advance(time.Minute)
	eventually(t, "every copy empty", func() bool {
		return stores[0].Len() == 0 && stores[1].Len() == 0 && stores[2].Len() == 0
	})
	eventually(t, "20 reported", func() bool { return reported.Load() >= 20 })
	time.Sleep(100 * time.Millisecond)
	if n := reported.Load(); n != 20 {
		t.Errorf("OnExpire called %d times for 20 bindings", n)
	}
	// An instance started afterwards finds nothing left to report.
	late := jsStore(t, srv.URL(), bucket, JetStreamOptions{Now: clk.now, OnExpire: func(Binding) { reported.Add(1) }})
	time.Sleep(1500 * time.Millisecond) // a sweep
	if n := reported.Load(); n != 20 || late.Len() != 0 {
		t.Errorf("after a late start: %d reported, %d held", n, late.Len())
	}
}

// TestJetStreamClusterNodeRestart stops the node a store is connected to,
// in a three-node cluster: the store reconnects to another node, and no
// binding is lost.
func TestJetStreamClusterNodeRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS cluster")
	}
	cl := natstest.StartCluster(t, 3)
	ctx := context.Background()
	clk := newClock()
	bucket := newBucket()
	a := jsStore(t, cl.URLs(), bucket, JetStreamOptions{Now: clk.now})
	b := jsStore(t, cl.Nodes[2].URL()+","+cl.Nodes[1].URL(), bucket, JetStreamOptions{Now: clk.now})
	put := func(s *JetStream, i int) {
		t.Helper()
		var err error
		for range 100 { // while the cluster elects new leaders
			if _, err = s.Put(ctx, bind(fmt.Sprintf("sip:%d@sip.local", i), c1, "a", 1, time.Hour)); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("put %d: %v", i, err)
	}
	for i := range 10 {
		put(a, i)
	}
	cl.Nodes[0].Stop()
	for i := 10; i < 20; i++ {
		put(a, i)
	}
	if err := cl.Nodes[0].Start(); err != nil {
		t.Fatal(err)
	}
	for i := 20; i < 30; i++ {
		put(b, i)
	}
	eventually(t, "both copies hold 30", func() bool { return a.Len() == 30 && b.Len() == 30 })
	for i := range 30 {
		if got := contacts(b, fmt.Sprintf("sip:%d@sip.local", i)); len(got) != 1 {
			t.Errorf("binding %d lost: %v", i, got)
		}
	}
}

// FuzzDecodeBinding feeds bucket values and keys as another process could
// have written them: bad ones are refused, none crashes, and good ones
// read back as written.
func FuzzDecodeBinding(f *testing.F) {
	good, _ := encodeBinding(bind(alice, c1, "a", 1, time.Hour))
	f.Add(good, "c2lwOjEwMDFAc2lwLmxvY2Fs.c2lwOjEwMDFAMTAuMC4wLjU")
	f.Add([]byte(`{"aor":""}`), "..")
	f.Add([]byte(`{"aor":"a","contact":"b","expires":-1}`), "%%%.x")
	f.Fuzz(func(t *testing.T, value []byte, key string) {
		if aor, contact, ok := parseKey(key); ok {
			if k, err := bindingKey(aor, contact); err == nil && k != key && len(key) < maxKeyLen {
				// Only the canonical encoding is ever written.
				if a2, c2, _ := parseKey(k); a2 != aor || c2 != contact {
					t.Fatalf("key %q does not round-trip", key)
				}
			}
		}
		b, err := decodeBinding(value)
		if err != nil {
			return
		}
		again, err := encodeBinding(b)
		if err != nil {
			t.Fatal(err)
		}
		b2, err := decodeBinding(again)
		if err != nil || b2 != b {
			t.Fatalf("binding does not round-trip: %+v, %+v, %v", b, b2, err)
		}
	})
}

// TestJetStreamServerRestart stops the only NATS server and starts it
// again on the same store: the bindings are still there, and the copies
// follow writes made afterwards.
func TestJetStreamServerRestart(t *testing.T) {
	srv := natstest.Single(t)
	ctx := context.Background()
	clk := newClock()
	bucket := newBucket()
	a := jsStore(t, srv.URL(), bucket, JetStreamOptions{Now: clk.now})
	b := jsStore(t, srv.URL(), bucket, JetStreamOptions{Now: clk.now})
	if _, err := a.Put(ctx, bind(alice, c1, "a", 1, time.Hour)); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	var err error
	for range 100 { // until the client is back
		if _, err = a.Put(ctx, bind(bob, c1, "b", 1, time.Hour)); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "b follows writes after the restart", func() bool {
		return slices.Equal(contacts(b, bob), []string{c1}) && slices.Equal(contacts(b, alice), []string{c1})
	})
	c := jsStore(t, srv.URL(), bucket, JetStreamOptions{Now: clk.now})
	if c.Len() != 2 {
		t.Errorf("a new instance loads %d bindings, want 2", c.Len())
	}
}

// TestCopyIgnoresLateEntries: the watch may deliver an entry, or a
// deletion, after this instance wrote a newer revision of the same
// binding itself; the copy keeps the newer one.
func TestCopyIgnoresLateEntries(t *testing.T) {
	m := NewMemory(MemoryOptions{})
	contact := "sip:1001@10.0.0.5:5060;transport=udp"
	m.set(bind(alice, contact, "new", 2, time.Hour), 5)
	m.set(bind(alice, contact, "old", 1, time.Hour), 3) // late put
	if b, rev, ok := m.get(alice, contact); !ok || rev != 5 || b.CallID != "new" {
		t.Fatalf("after a late put: %v rev %d, %v; want call-id new at rev 5", b.CallID, rev, ok)
	}
	m.dropUpTo(alice, contact, 4) // late deletion
	if _, _, ok := m.get(alice, contact); !ok {
		t.Fatal("a late deletion removed the newer binding")
	}
	m.dropUpTo(alice, contact, 6)
	if _, _, ok := m.get(alice, contact); ok {
		t.Fatal("a later deletion left the binding")
	}
}
