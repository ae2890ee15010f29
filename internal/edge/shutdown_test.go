package edge

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/routr-go/routr/internal/auth"
	"github.com/routr-go/routr/internal/calls"
	"github.com/routr-go/routr/internal/location"
	"github.com/routr-go/routr/internal/resources"
)

// TestStopWhileUDPRequestsArrive stops edges while UDP requests pour in.
// Requests read just before the listener closes are handled by sipgo after
// it is gone; sipgo then answers from a socket it opens itself, whose
// reader must not outlive the edge. goleak fails the test if it does.
func TestStopWhileUDPRequestsArrive(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	set := loadExample(t)
	for round := range 5 {
		stopUnderUDPLoad(t, set, round)
	}
	goleak.VerifyNone(t, ignore)
}

// startStoppable starts an edge on loopback UDP and TCP; stop returns
// once Run has.
func startStoppable(t *testing.T, set *resources.Set) (srv *Server, stop func()) {
	t.Helper()
	dg, err := auth.New(auth.Config{Algorithms: []string{"MD5"}})
	if err != nil {
		t.Fatal(err)
	}
	loc := location.NewMemory(location.MemoryOptions{MaxBindings: 100})
	srv, err = New(Options{
		Listeners:  []Listener{{Protocol: "udp", Addr: "127.0.0.1:0"}, {Protocol: "tcp", Addr: "127.0.0.1:0"}},
		UDPSockets: 1,
		Resources:  resources.NewHolder(set),
		Auth:       dg,
		Location:   loc,
		Calls:      calls.NewTracker(calls.Options{Sink: &recorder{}}),
		Events:     &recorder{},
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 4})),
		Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	go loc.Run(ctx)
	<-srv.Ready()
	return srv, func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("edge did not stop")
		}
	}
}

func stopUnderUDPLoad(t *testing.T, set *resources.Set, round int) {
	srv, stop := startStoppable(t, set)
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dst, _ := net.ResolveUDPAddr("udp", srv.Addr("udp").String())
	port := c.LocalAddr().(*net.UDPAddr).Port
	stopBlast := make(chan struct{})
	var wg sync.WaitGroup
	sent := make(chan struct{}, 1)
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stopBlast:
				return
			default:
			}
			msg := fmt.Sprintf("OPTIONS sip:sip.local SIP/2.0\r\n"+
				"Via: SIP/2.0/UDP 127.0.0.1:%d;rport;branch=z9hG4bK-stop-%d-%d\r\n"+
				"Max-Forwards: 70\r\nFrom: <sip:1001@sip.local>;tag=f%d\r\nTo: <sip:sip.local>\r\n"+
				"Call-ID: stop-%d-%d\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", port, round, i, i, round, i)
			_, _ = c.WriteToUDP([]byte(msg), dst)
			if i == 200 {
				sent <- struct{}{}
			}
		}
	})
	// Stop the edge in the middle of the stream.
	<-sent
	stop()
	close(stopBlast)
	wg.Wait()
}
