package events

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/routr-go/routr/internal/natstest"
)

// TestJetStreamStreamReplicas: the events stream an edge creates has
// three replicas on a NATS cluster of three (one node down then stops no
// publishing), one on a single server, and what EVENTS_STREAM_REPLICAS
// asks for when set. Each pipeline confirms its event through OnSent.
func TestJetStreamStreamReplicas(t *testing.T) {
	cl := natstest.StartCluster(t, 3)
	single := natstest.Single(t)
	for _, tc := range []struct {
		name, url string
		replicas  int
		want      int
	}{
		{"cluster", cl.URLs(), 0, 3},
		{"cluster asked for 2", cl.URLs(), 2, 2},
		{"single server", single.URL(), 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream := "REPLICAS_" + string(rune('A'+tc.want)) + string(rune('A'+tc.replicas))
			p, err := NewPipeline(Config{NATSEnabled: true, NATSURL: tc.url, Durable: true, Stream: stream,
				Subject: "r" + stream, Replicas: tc.replicas}, PipelineOptions{Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var sent []string
			if !p.OnSent(func(evs []Event) {
				mu.Lock()
				defer mu.Unlock()
				for _, e := range evs {
					sent = append(sent, e.ID)
				}
			}) {
				t.Fatal("OnSent = false with a NATS publisher")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- p.Run(ctx) }()
			e := EndpointRegistered("sip:1001@sip.local", 60, nil, time.Now())
			p.Publish(e)
			if err := p.Close(ctx); err != nil {
				t.Fatal(err)
			}
			<-done
			mu.Lock()
			if !slices.Equal(sent, []string{e.ID}) {
				t.Errorf("OnSent saw %v, want [%s]", sent, e.ID)
			}
			mu.Unlock()

			nc, err := nats.Connect(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			js, _ := jetstream.New(nc)
			s, err := js.Stream(ctx, stream)
			if err != nil {
				t.Fatal(err)
			}
			info, err := s.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if info.Config.Replicas != tc.want || info.State.Msgs != 1 {
				t.Errorf("stream: %d replicas, %d messages; want %d replicas, 1 message", info.Config.Replicas, info.State.Msgs, tc.want)
			}
		})
	}
}

// TestPipelineWithoutNATSConfirmsNothing: console only, OnSent reports
// that no confirmation will come.
func TestPipelineWithoutNATSConfirmsNothing(t *testing.T) {
	p, err := NewPipeline(Config{ConsoleEnabled: true}, PipelineOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if p.OnSent(func([]Event) {}) {
		t.Error("OnSent = true without a NATS publisher")
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}
