package edge

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/routr-go/routr/internal/auth"
	"github.com/routr-go/routr/internal/calls"
	"github.com/routr-go/routr/internal/location"
	"github.com/routr-go/routr/internal/resources"
)

// BenchmarkValidOptions measures a valid OPTIONS round trip to the edge
// over UDP and over TCP: the path whose cost the handling of bad
// messages must not change (compare with the commit before it).
func BenchmarkValidOptions(b *testing.B) {
	for _, tp := range []string{"udp", "tcp"} {
		b.Run(tp, func(b *testing.B) {
			addr := startBenchEdge(b, tp)
			c, err := net.Dial(tp, addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			buf := make([]byte, 4096)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				msg := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/%s %s;rport;branch=z9hG4bKb%d\r\nFrom: <sip:bench@sip.local>;tag=1\r\nTo: <sip:%s>\r\nCall-ID: bench-%d\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
					addr, tp, c.LocalAddr(), i, addr, i)
				if _, err := c.Write([]byte(msg)); err != nil {
					b.Fatal(err)
				}
				_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
				if _, err := c.Read(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// startBenchEdge runs an edge with the example resources and one
// listener of protocol and returns its address.
func startBenchEdge(b *testing.B, protocol string) string {
	b.Helper()
	set, err := resources.LoadDir("../../config/resources")
	if err != nil {
		b.Fatal(err)
	}
	dg, err := auth.New(auth.Config{Algorithms: []string{"MD5"}})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := New(Options{
		Listeners:  []Listener{{Protocol: protocol, Addr: "127.0.0.1:0"}},
		Resources:  resources.NewHolder(set),
		Auth:       dg,
		Location:   location.NewMemory(location.MemoryOptions{MaxBindings: 100}),
		Calls:      calls.NewTracker(calls.Options{}),
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	<-srv.Ready()
	b.Cleanup(func() {
		cancel()
		<-done
	})
	return srv.Addr(protocol).String()
}

// BenchmarkGoid is what an accepted connection pays once, on its first
// bytes, to be found again if sipgo cannot parse what it sends.
func BenchmarkGoid(b *testing.B) {
	for b.Loop() {
		_ = goid()
	}
}
