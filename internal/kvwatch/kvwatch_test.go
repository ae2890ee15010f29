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
