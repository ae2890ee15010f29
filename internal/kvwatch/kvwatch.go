// Package kvwatch provides a follower of a JetStream key-value bucket that
// keeps its watcher going across reconnections, so that a copy of the
// bucket kept from it never falls behind for long, and the bucket helpers
// its users share (OpenBucket, IsConflict).
package kvwatch

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// checkEvery is how often Follow looks for a reconnection.
const checkEvery = 500 * time.Millisecond

// OpenTimeout bounds one attempt at making a watcher. Making one is a
// request to the JetStream API (consumer create) that waits for its
// answer as long as its context lasts, and a NATS cluster busy electing
// leaders, or a server under load, can drop that request: without a bound
// the watch (or the start of an instance) would hang for good on one lost
// request. Var so that tests can shorten it.
var OpenTimeout = 5 * time.Second

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
		w, err := openBounded(ctx, func(ctx context.Context) (jetstream.KeyWatcher, error) { return open(ctx, last) })
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

// Open makes a watcher with open, trying again (each attempt bounded by
// OpenTimeout) until one is made or ctx ends: for the initial load of a
// bucket, which must not hang on one lost request either.
func Open(ctx context.Context, open func(ctx context.Context) (jetstream.KeyWatcher, error)) (jetstream.KeyWatcher, error) {
	for {
		w, err := openBounded(ctx, open)
		if err == nil {
			return w, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// openBounded makes one watcher, giving up after OpenTimeout. The context
// given to open also ends the watcher it makes (nats.go unsubscribes when
// it ends), so it is cancelled on time-out only while the watcher is being
// made, and otherwise when the watcher is stopped.
func openBounded(ctx context.Context, open func(ctx context.Context) (jetstream.KeyWatcher, error)) (jetstream.KeyWatcher, error) {
	wctx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(OpenTimeout, cancel)
	w, err := open(wctx)
	if !timer.Stop() {
		// Timed out: a watcher made in that instant is ended already.
		if err == nil {
			_ = w.Stop()
			err = context.DeadlineExceeded
		}
	}
	if err != nil {
		cancel()
		return nil, err
	}
	return boundWatcher{w, cancel}, nil
}

// boundWatcher releases its context when stopped.
type boundWatcher struct {
	jetstream.KeyWatcher
	cancel context.CancelFunc
}

func (w boundWatcher) Stop() error {
	err := w.KeyWatcher.Stop()
	w.cancel()
	return err
}

// Resume returns the watch options that start after revision last.
func Resume(last uint64, opts ...jetstream.WatchOpt) []jetstream.WatchOpt {
	if last > 0 {
		opts = append(opts, jetstream.ResumeFromRevision(last+1))
	}
	return opts
}
