// Package cluster provides what edge instances share through NATS
// JetStream besides bindings: a call ledger, so that each call's
// call.started and call.ended are published once whichever instances see
// its requests, presence, and round-robin turns.
package cluster
