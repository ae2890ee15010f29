package edge

import (
	"sync/atomic"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/routr-go/routr/internal/events"
	"github.com/routr-go/routr/internal/resources"
	"github.com/routr-go/routr/internal/siptest"
)

// The edge asks the pipeline it is given.
var _ interface{ Backlogged() bool } = (*events.Pipeline)(nil)

// backlogSink is an events sink whose publisher falls behind on demand.
type backlogSink struct {
	events.Sink
	on atomic.Bool
}

func (b *backlogSink) Backlogged() bool { return b.on.Load() }

// While the events publisher falls behind, new calls and registrations
// are answered 503 with Retry-After and make no event; a call already up
// ends normally, with its call.ended.
func TestEventsBacklogRefusesNewWork(t *testing.T) {
	set, err := resources.LoadDir("../../config/resources")
	if err != nil {
		t.Fatal(err)
	}
	var bs *backlogSink
	te := startEdgeWith(t, set, func(o *Options) { bs = &backlogSink{Sink: o.Events}; o.Events = bs })
	a := te.phone(t, "udp", "1001")
	b := te.phone(t, "udp", "1002")
	mustRegister(t, b)
	c := siptest.Dial(t, a, b, "1002", "call-before-backlog")
	ok := c.Answer()

	bs.on.Store(true)
	res, err := a.Register(60, "")
	if err != nil || res.StatusCode != 503 || res.GetHeader("Retry-After") == nil {
		t.Fatalf("REGISTER while backlogged: %v %v, want 503 with Retry-After", res, err)
	}
	inv := a.NewRequest(sip.INVITE, "sip:1002@sip.local", "call-during-backlog")
	if err := a.Send(inv); err != nil {
		t.Fatal(err)
	}
	if res, err := a.Response(sip.INVITE, wait); err != nil || res.StatusCode != 503 {
		t.Fatalf("new INVITE while backlogged: %v %v, want 503", res, err)
	}
	_ = a.Send(siptest.AckFor(inv, res))
	c.Hangup(ok, true)
	waitFor(t, "call.ended of the call already up", func() bool {
		return len(te.rec.byCall("call-before-backlog")) == 3
	})
	if got := te.rec.byCall("call-during-backlog"); len(got) != 0 {
		t.Fatalf("refused call made events: %v", got)
	}
	if n := counterValue(te.srv.limits.shed); n != 2 {
		t.Fatalf("routr_sip_events_backlog_refused_total = %v, want 2", n)
	}

	bs.on.Store(false)
	if res, err := a.Register(60, ""); err != nil || res.StatusCode != 200 {
		t.Fatalf("REGISTER once caught up: %v %v", res, err)
	}
}
