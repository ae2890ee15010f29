package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/routr-go/routr/internal/calls"
	"github.com/routr-go/routr/internal/edge"
)

// drainer is what the drain on SIGTERM acts on.
type drainer struct {
	sip     *edge.Server
	tracker *calls.Tracker
	// notReady makes /healthz fail, so that a load balancer sends new
	// traffic elsewhere.
	notReady func()
	// withdraw, if set, tells the other instances of a cluster at once
	// that this one is going (cluster.Presence.Withdraw), so that they
	// stop handing it requests it would refuse.
	withdraw func()
	timeout  time.Duration
	log      *slog.Logger
}

// drainPoll is how often a draining edge looks at what it has left.
const drainPoll = 50 * time.Millisecond

// run waits for the first SIGTERM or SIGINT (sig ends), then drains: the
// edge refuses new transactions (503 with Retry-After) and keeps serving
// those in progress and the dialogs of the calls it routed, until it has
// nothing in hand (no request being handled, no dialog awaiting its ACK,
// no call up) or d.timeout has passed, or a second signal comes. Then it
// calls stop, which ends SIP. It returns at once if run ends first.
func (d drainer) run(sig, run context.Context, stop func()) {
	select {
	case <-run.Done():
		return
	case <-sig.Done():
	}
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)

	start := time.Now()
	d.notReady()
	d.sip.Drain(d.timeout)
	if d.withdraw != nil {
		d.withdraw()
	}
	req, acks := d.sip.Busy()
	d.log.Info("draining", "timeout", d.timeout.String(), "requests", req, "awaiting_ack", acks, "calls", d.tracker.Active())
	deadline := time.NewTimer(d.timeout)
	defer deadline.Stop()
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	defer stop()
	for {
		req, acks := d.sip.Busy()
		active := d.tracker.Active()
		if req == 0 && acks == 0 && active == 0 {
			d.log.Info("drained", "after", time.Since(start).Round(time.Millisecond).String(), "refused", d.sip.Refused())
			return
		}
		select {
		case <-tick.C:
		case <-run.Done():
			return
		case <-deadline.C:
			d.log.Warn("drain timeout: stopping with work in hand", "timeout", d.timeout.String(),
				"requests", req, "awaiting_ack", acks, "calls", active, "refused", d.sip.Refused())
			return
		case <-again:
			d.log.Warn("second signal: stopping without waiting", "requests", req, "awaiting_ack", acks, "calls", active)
			return
		}
	}
}

// endCalls ends the calls still up once SIP has stopped, so that each
// call.started published has its call.ended (SYSTEM_SHUTDOWN) in the
// events flushed next.
func (d drainer) endCalls() {
	if n := d.tracker.EndAll(); n > 0 {
		d.log.Warn("calls still up at shutdown ended", "calls", n, "hangup_cause", calls.CauseShutdown)
	}
}
