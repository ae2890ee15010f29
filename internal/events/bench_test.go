package events

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var benchHeaders = []Header{
	{Name: "Via", Value: "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds"},
	{Name: "From", Value: `"Alice" <sip:alice@atlanta.example.com>;tag=1928301774`},
	{Name: "To", Value: "<sip:bob@biloxi.example.com>"},
	{Name: "X-Room-Id", Value: "room-42"},
	{Name: "X-Request-Priority", Value: "normal"},
	{Name: "Contact", Value: "<sip:alice@10.0.0.1:5060>"},
}

var benchStart = CallStart{
	CallID:       "a84b4c76e66710@pc33.atlanta.example.com",
	From:         `"Alice" <sip:alice@atlanta.example.com:5060>;tag=1928301774`,
	To:           "sip:bob@biloxi.example.com",
	StartTime:    t0,
	ExtraHeaders: benchHeaders,
	Metadata:     map[string]any{"accessKeyId": "WO00000000000000000000000000000000", "region": "us-east"},
}

func BenchmarkEncodeCallStarted(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		CallStarted(benchStart)
	}
}

// BenchmarkEncodeCallStartedStdlib builds the same payload the obvious way
// (a map through encoding/json) for comparison.
func BenchmarkEncodeCallStartedStdlib(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		xh := map[string]string{}
		for _, h := range benchStart.ExtraHeaders {
			if isExtraHeader(h.Name) {
				xh[h.Name] = h.Value
			}
		}
		m := map[string]any{
			"callId": benchStart.CallID, "from": NormalizeURI(benchStart.From), "to": NormalizeURI(benchStart.To),
			"startTime": benchStart.StartTime.UTC().Format(TimeLayout), "extraHeaders": xh,
		}
		for k, v := range benchStart.Metadata {
			if _, ok := m[k]; !ok && !IsCredentialName(k) {
				m[k] = v
			}
		}
		body, _ := json.Marshal(m)
		_ = Event{ID: NewID(), Type: TypeCallStarted, Time: benchStart.StartTime, Body: body}
	}
}

func BenchmarkEncodeCallEnded(b *testing.B) {
	e := CallEnd{CallID: benchStart.CallID, From: "sip:alice@atlanta.example.com", To: "sip:bob@biloxi.example.com",
		StartTime: t0, AnswerTime: answered, EndTime: ended, SIPCode: 200, ExtraHeaders: benchHeaders}
	b.ReportAllocs()
	for b.Loop() {
		CallEnded(e)
	}
}

func BenchmarkEncodeEndpointRegistered(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		EndpointRegistered("sip:1001@sip.local", 3600, benchHeaders, t0)
	}
}

func BenchmarkNewID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		NewID()
	}
}

type discardPublisher struct{}

func (discardPublisher) Send(context.Context, Event) error { return nil }

// BenchmarkQueuePublish is the cost the SIP path pays per event.
func BenchmarkQueuePublish(b *testing.B) {
	q, _ := NewQueue(discardPublisher{}, QueueOptions{Name: "bench", Logger: quiet})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.Run(ctx); close(done) }()
	e := CallStarted(benchStart)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			q.Publish(e)
		}
	})
	b.StopTimer()
	q.Close(context.Background())
	cancel()
	<-done
}

func benchmarkEndToEnd(b *testing.B, durable bool) {
	srv, err := StartEmbedded(EmbeddedOptions{Addr: "127.0.0.1:0", NoJetStream: !durable})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	reg := prometheus.NewRegistry()
	p, err := NewPipeline(Config{NATSEnabled: true, NATSURL: srv.ClientURL(), Subject: "routr", Durable: durable, QueueBound: b.N + 1},
		PipelineOptions{Registerer: reg, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	e := CallStarted(benchStart)
	b.ReportAllocs()
	b.SetBytes(int64(len(e.Body)))
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		p.Publish(e)
	}
	cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
	defer ccancel()
	if err := p.Close(cctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	cancel()
	<-done
}

// BenchmarkPublishNATS: events confirmed by a local server per second
// (core NATS, one flush per batch).
func BenchmarkPublishNATS(b *testing.B) { benchmarkEndToEnd(b, false) }

// BenchmarkPublishJetStream: events acked by a local JetStream stream
// (file storage) per second.
func BenchmarkPublishJetStream(b *testing.B) { benchmarkEndToEnd(b, true) }
