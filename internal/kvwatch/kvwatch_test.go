package kvwatch

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/routr-go/routr/internal/natstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestFollowAcrossRestart follows a bucket while its server restarts:
// every value written before and after arrives, once each, and Follow
// returns when its context ends.
func TestFollowAcrossRestart(t *testing.T) {
	srv := natstest.Single(t)
	nc, err := nats.Connect(srv.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx := context.Background()
	js, _ := jetstream.New(nc)
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "follow", Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "k0", []byte("0")); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Follow(runCtx, nc, 0, func(ctx context.Context, last uint64) (jetstream.KeyWatcher, error) {
			return kv.WatchAll(ctx, Resume(last)...)
		}, func(e jetstream.KeyValueEntry) {
			mu.Lock()
			seen[e.Key()]++
			mu.Unlock()
		}, nil)
	}()
	has := func(k string) bool { mu.Lock(); defer mu.Unlock(); return seen[k] > 0 }
	wait := func(k string) {
		t.Helper()
		for range 1000 {
			if has(k) {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("%s never arrived", k)
	}
	wait("k0")
	srv.Stop()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	for range 200 { // until the client is back
		if _, err = kv.Put(ctx, "k1", []byte("1")); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	wait("k1")
	stop()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if seen["k0"] != 1 || seen["k1"] != 1 {
		t.Errorf("deliveries %v, want each key once", seen)
	}
}

// TestFollowLostOpen makes the first watcher's consumer create go
// unanswered, as a busy NATS cluster may leave it (the attempt waits for
// its context): Follow gives up on it after OpenTimeout and makes another,
// and the values arrive. Open does the same for an initial load.
func TestFollowLostOpen(t *testing.T) {
	defer func(d time.Duration) { OpenTimeout = d }(OpenTimeout)
	OpenTimeout = 300 * time.Millisecond
	srv := natstest.Single(t)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx := context.Background()
	js, _ := jetstream.New(nc)
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "lost", Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "k0", []byte("0")); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	attempts := 0
	// lostFirst answers nothing to the first attempt, like a request the
	// JetStream API dropped: it returns only when its context ends.
	lostFirst := func(ctx context.Context) (jetstream.KeyWatcher, error) {
		mu.Lock()
		attempts++
		n := attempts
		mu.Unlock()
		if n == 1 {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return kv.WatchAll(ctx)
	}

	runCtx, stop := context.WithTimeout(ctx, 20*time.Second)
	defer stop()
	got := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Follow(runCtx, nc, 0, func(ctx context.Context, _ uint64) (jetstream.KeyWatcher, error) { return lostFirst(ctx) },
			func(e jetstream.KeyValueEntry) {
				select {
				case got <- e.Key():
				default:
				}
			}, nil)
	}()
	select {
	case k := <-got:
		if k != "k0" {
			t.Errorf("got %q, want k0", k)
		}
	case <-runCtx.Done():
		t.Fatal("Follow hung on a watcher whose creation went unanswered")
	}
	stop()
	<-done

	attempts = 0
	openCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	w, err := Open(openCtx, lostFirst)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer w.Stop()
	if attempts != 2 {
		t.Errorf("Open made %d attempts, want 2", attempts)
	}
	// The watcher made outlives the bound on its making.
	time.Sleep(2 * OpenTimeout)
	if _, err := kv.Put(ctx, "k1", []byte("1")); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for len(keys) < 2 {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				t.Fatalf("watcher stopped after %v", keys)
			}
			if e != nil {
				keys = append(keys, e.Key())
			}
		case <-openCtx.Done():
			t.Fatalf("got %v, want k0 and k1", keys)
		}
	}
}
