package events

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The benchmarks below measure what publishing costs the process, the
// NATS server included when it runs inside it (EMBEDDED_NATS):
//
//	go test -run '^$' -bench 'Pipeline' -benchmem ./internal/events/
//
// With ROUTR_BENCH_NATS_URL set (a nats-server started apart, e.g.
// `nats-server -a 127.0.0.1 -p 14222`), the "external" variants publish
// to it: only the publisher's side is then counted, as in a deployment
// where NATS runs as its own process.

// benchServer returns the URL of the server a variant publishes to: an
// embedded one ("inprocess": published to in memory, the others over
// loopback TCP), with a subscriber that reads and discards what the server
// delivers (the server's delivery work is then in the process, as with
// the bench's counting subscriber), or the external one.
func benchServer(b *testing.B, where string) string {
	b.Helper()
	if where == "external" {
		u := os.Getenv("ROUTR_BENCH_NATS_URL")
		if u == "" {
			b.Skip("ROUTR_BENCH_NATS_URL not set")
		}
		return u
	}
	srv, err := StartEmbedded(EmbeddedOptions{Addr: "127.0.0.1:0", NoJetStream: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Close)
	discardSubscriber(b, srv.ClientURL(), "routr.>")
	benchEmbedded = srv
	return srv.ClientURL()
}

// benchEmbedded is the last server benchServer started in the process.
var benchEmbedded *EmbeddedServer

// discardSubscriber subscribes to subject with a bare protocol client that
// reads everything the server sends and throws it away: the cheapest
// consumer, so that the server does its delivery work.
func discardSubscriber(b *testing.B, serverURL, subject string) {
	b.Helper()
	u, err := url.Parse(serverURL)
	if err != nil {
		b.Fatal(err)
	}
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	if _, err := fmt.Fprintf(c, "CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true}\r\nSUB %s 1\r\nPING\r\n", subject); err != nil {
		b.Fatal(err)
	}
	// Wait for the PONG, so that the subscription exists before publishing.
	buf := make([]byte, 4096)
	var got []byte
	for !containsPong(got) {
		n, err := c.Read(buf)
		if err != nil {
			b.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	go io.Copy(io.Discard, c)
}

func containsPong(b []byte) bool {
	for i := 0; i+4 <= len(b); i++ {
		if string(b[i:i+4]) == "PONG" {
			return true
		}
	}
	return false
}

// confirmedPublisher tells, after each SendBatch, how many events were
// confirmed, so a benchmark can wait for them without polling.
type confirmedPublisher struct {
	BatchPublisher
	confirmed chan int
}

func (p confirmedPublisher) SendBatch(ctx context.Context, batch []Event) (int, error) {
	n, err := p.BatchPublisher.SendBatch(ctx, batch)
	if n > 0 {
		p.confirmed <- n
	}
	return n, err
}

// BenchmarkPipelineBatch: what one event costs when the queue sends
// batches of k events (one flush, i.e. one PING/PONG round trip, per
// batch): each op publishes an event and every k-th op waits until the
// server has confirmed the batch. k=1 is an event alone in its round
// trip (a quiet edge); larger k shows the cost of an event without its
// round trip. Deterministic enough for bench/callgrind.sh.
func BenchmarkPipelineBatch(b *testing.B) {
	for _, where := range []string{"embedded", "inprocess", "external"} {
		for _, k := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("%s/k=%d", where, k), func(b *testing.B) {
				conn := ConnOptions{URL: benchServer(b, where), Logger: quiet}
				if where == "inprocess" {
					conn.Extra = []nats.Option{nats.InProcessServer(benchEmbedded)}
				}
				pub, err := NewNATSPublisher(NATSOptions{ConnOptions: conn, Subject: "routr"})
				if err != nil {
					b.Fatal(err)
				}
				defer pub.Close()
				cp := confirmedPublisher{pub, make(chan int, 1024)}
				q, err := NewQueue(cp, QueueOptions{Name: "bench", MaxBatch: k, Logger: quiet, Linger: -1})
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { q.Run(ctx); close(done) }()
				defer func() { cancel(); <-done }()
				waitConnected(b, pub)
				e := CallStarted(benchStart)
				b.ReportAllocs()
				b.ResetTimer()
				pending := 0
				for i := range b.N {
					q.Publish(e)
					pending++
					if (i+1)%k == 0 || i == b.N-1 {
						for pending > 0 {
							pending -= <-cp.confirmed
						}
					}
				}
			})
		}
	}
}

func waitConnected(b *testing.B, p *NATSPublisher) {
	b.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !p.Connected() {
		if time.Now().After(deadline) {
			b.Fatal("not connected to NATS within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkPipelinePaced publishes events at a steady rate, one every
// 1/6,000 s as at the bench's 2,000 trunk calls/s (three events a call),
// through the pipeline routr builds (NewPipeline, default queue settings;
// "nolinger" sends each batch at once, as before the linger), and reports
// the process's CPU time per event (cpu-µs/event: user + system, from
// getrusage) and the events per confirmation round trip. "off" is the
// same loop with publishing off: on minus off is what events cost. ns/op
// is the pace, not a cost.
func BenchmarkPipelinePaced(b *testing.B) {
	const rate = 6000 // events per second
	for _, v := range []string{"off", "embedded", "embedded/nolinger", "inprocess", "external", "external/nolinger"} {
		b.Run(v, func(b *testing.B) {
			where, nolinger := strings.CutSuffix(v, "/nolinger")
			c, o := Config{}, PipelineOptions{Logger: quiet}
			if where != "off" {
				c = Config{NATSEnabled: true, NATSURL: benchServer(b, where), Subject: "routr", QueueBound: b.N + 1}
			}
			if where == "inprocess" {
				o.Embedded = benchEmbedded
			}
			p, err := NewPipeline(c, o)
			if err != nil {
				b.Fatal(err)
			}
			if nolinger {
				p.queues[0].linger = 0
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { p.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			if len(p.queues) > 0 {
				// Let the connection come up before counting.
				waitConnected(b, p.queues[0].pub.(*NATSPublisher))
			}
			e := CallStarted(benchStart)
			tick := time.NewTicker(time.Second / rate)
			defer tick.Stop()
			b.ReportAllocs()
			cpu0 := processCPU()
			b.ResetTimer()
			start := time.Now()
			for sent := 0; sent < b.N; {
				e.Time = <-tick.C // the queue's linger counts from it
				// Catch up when a tick was missed.
				due := min(int(e.Time.Sub(start).Seconds()*rate)+1, b.N)
				for ; sent < due; sent++ {
					p.Publish(e)
				}
			}
			cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
			defer ccancel()
			if err := p.Close(cctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/event")
			if len(p.queues) > 0 {
				q := p.queues[0]
				b.ReportMetric(testutil.ToFloat64(q.published)/testutil.ToFloat64(q.batches), "events/batch")
			}
		})
	}
}

// processCPU is the user + system CPU time the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
