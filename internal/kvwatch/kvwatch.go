// Package kvwatch provides a follower of a JetStream key-value bucket that
// keeps its watcher going across reconnections, so that a copy of the
// bucket kept from it never falls behind for long.
package kvwatch

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// checkEvery is how often Follow looks for a reconnection.
const checkEvery = 500 * time.Millisecond

// Opener makes a watcher that delivers the entries after revision last
// (every current entry when last is 0).
type Opener func(ctx context.Context, last uint64) (jetstream.KeyWatcher, error)

// Follow calls apply for every entry the watchers made by open deliver,
// in order, until ctx ends. It makes a new watcher, resuming after the
// last revision applied, when the current one stops or when the
// connection has reconnected since it was made: a watcher notices a
// consumer lost with its server only after missing heartbeats, ten
// seconds or more. onError, if set, learns why a watcher could not be
// made; Follow tries again every second.
func Follow(ctx context.Context, nc *nats.Conn, last uint64, open Opener, apply func(jetstream.KeyValueEntry), onError func(error)) {
	tick := time.NewTicker(checkEvery)
	defer tick.Stop()
	for ctx.Err() == nil {
		reconnects := nc.Stats().Reconnects
		w, err := open(ctx, last)
		if err != nil {
			if onError != nil && ctx.Err() == nil {
				onError(err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
	updates:
		for {
			select {
			case <-ctx.Done():
				break updates
			case <-tick.C:
				if nc.Stats().Reconnects != reconnects {
					break updates
				}
			case e, ok := <-w.Updates():
				if !ok {
					break updates
				}
				if e == nil {
					continue // the initial values are all in
				}
				apply(e)
				last = max(last, e.Revision())
			}
		}
		_ = w.Stop()
	}
}

// Resume returns the watch options that start after revision last.
func Resume(last uint64, opts ...jetstream.WatchOpt) []jetstream.WatchOpt {
	if last > 0 {
		opts = append(opts, jetstream.ResumeFromRevision(last+1))
	}
	return opts
}
