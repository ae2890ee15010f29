// Package events builds the call and registration events of the edge and publishes them, in order and without blocking SIP processing, to NATS (core or JetStream) and the log.
//
// # Event model
//
// An [Event] is encoded once, when it is built by one of the constructors
// ([CallStarted], [CallAnswered], [CallEnded], [EndpointRegistered],
// [EndpointUnregistered]); publishers and retries only copy its bytes. The
// payloads follow the events contract (shared/spec/events.md): the compat
// fields of Routr v2 with the same names and formats, plus additive fields
// and subjects documented by the JSON Schemas in docs/events.
//
// # Delivery
//
// Producers hand events to a [Sink], whose Publish never blocks. The sinks
// that reach the outside world are [Queue]s: a bounded, in-order buffer in
// front of one slow [Publisher] ([NATSPublisher], [JetStreamPublisher],
// [ConsolePublisher]), drained by one goroutine. [NewPipeline] builds the
// queues and publishers a [Config] (Routr's environment variables, see
// [ConfigFromEnv]) enables, behind a [Fanout]. [StartEmbedded] runs a NATS
// server in the process, and [Subscribe] prints what is published (the
// `routr events` command).
//
// Bounds and overflow behaviour:
//
//   - A Queue holds at most Bound events that its publisher has not yet
//     confirmed (default [DefaultQueueBound]). When it is full, Publish drops
//     the NEWEST event (the one being published) and counts it in
//     routr_events_dropped_total{reason="overflow"}; events already queued
//     are never discarded to make room. So while NATS is away the first
//     Bound events are kept and later published in order, and the gap is at
//     the end, where the drop counter and the log say it is.
//   - An event the publisher rejects for good (larger than the server's max
//     payload) is dropped and counted with reason="rejected".
//   - On shutdown, [Queue.Close] publishes what is queued, bounded by its
//     context; what is left is counted with reason="shutdown", and events
//     published after Close with reason="closed".
//
// Delivery guarantees: core NATS mode is at-least-once from our queue to the
// server: an event leaves the queue only when a PING/PONG round trip on the
// same connection has confirmed the server read it; an event written just
// before a connection drop is re-sent after the reconnect, so consumers may
// rarely see a duplicate (same Routr-Event-Id) around a disconnect, never a
// loss within the bound. Durable mode publishes into a JetStream stream with
// Nats-Msg-Id set to the event id, so such re-sends are removed by the
// server's duplicate window: exactly once in the stream, provided the
// re-send comes within the window (10 minutes on a stream we create). Acks
// are awaited asynchronously and events re-sent in order from the first one
// not acked; only an error on a single event while later ones are stored
// (not a disconnect, which loses a suffix) can store a re-sent event after
// a later one.
package events
