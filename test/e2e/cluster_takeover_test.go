package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/routr-go/routr/internal/natstest"
	"github.com/routr-go/routr/internal/siptest"
)

// TestClusterKilledEdgeEventsOut kills an edge whose call events never
// reached NATS: its events publisher points at a port where no server
// listens, while its call ledger works. The ledger's markers hold the
// events, so the surviving edge publishes call.started and call.ended
// for it, once each. (call.answered has no marker: it is lost with the
// edge.)
func TestClusterKilledEdgeEventsOut(t *testing.T) {
	t.Run("gone", func(t *testing.T) { killedEdgeEventsOut(t, false) })
	// Restarted at once under the same address, as a supervisor does
	// after a crash: its heartbeats go on, but the new process is not the
	// one that claimed the markers (Presence.Incarnation), so the
	// survivor still takes them over, and the new process publishes
	// nothing of its predecessor's.
	t.Run("restarted", func(t *testing.T) { killedEdgeEventsOut(t, true) })
}

func killedEdgeEventsOut(t *testing.T, restart bool) {
	srv := natstest.Single(t)
	nc := createEventsStream(t, srv.URL(), 1)
	edges := newClusterEdges(t, 2, srv.URL(), 0)
	cut := edges[0]
	cut.env = append(cut.env, "CLUSTER_NATS_URL="+srv.URL(),
		fmt.Sprintf("NATS_PUBLISHER_URL=nats://127.0.0.1:%d", freePort(t)))
	cut.stop(t)
	cut.start(t)
	edges[1].waitMetric(t, "routr_cluster_instances_up", 2)

	callee := phoneAt(t, "udp", "1002", edges[1])
	if res, err := callee.Register(600, ""); err != nil || res.StatusCode != 200 {
		t.Fatalf("REGISTER: %v %v", res, err)
	}
	waitBindings(t, edges, 1)
	caller := phoneAt(t, "udp", "1001", cut)
	var ids []string
	for i := range 3 {
		id := fmt.Sprintf("killed-unsent-%d", i)
		ids = append(ids, id)
		c := siptest.Dial(t, caller, callee, "1002", id)
		ok := c.Answer()
		c.Hangup(ok, true)
	}
	// Each call's call.started and call.ended are claimed in the ledger
	// and wait for NATS in the edge.
	cut.waitMetric(t, "routr_cluster_ledger_unconfirmed", float64(2*len(ids)))
	cut.kill()
	if restart {
		cut.env = append(cut.env, "NATS_PUBLISHER_URL="+srv.URL())
		cut.start(t)
	}

	per, _ := waitCallEvents(t, nc, ids)
	for _, id := range ids {
		if got := strings.Join(per[id], ","); got != "call.started,call.ended" {
			t.Errorf("call %s: events %s, want call.started,call.ended", id, got)
		}
	}
}
