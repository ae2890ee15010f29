package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// The subscriber counts events per step. Each sipp run tags its Call-IDs
// with the step ("b<step>-<n>-<pid>@127.0.0.1", sipp -cid_str), and the
// REGISTER scenario copies its Call-ID into an X-Bench-Id header, which
// endpoint.registered carries in extraHeaders. So every event is mapped
// to the step and to the SIP transaction or call it reports.

const (
	evRegistered   = "endpoint.registered"
	evUnregistered = "endpoint.unregistered"
	evStarted      = "call.started"
	evAnswered     = "call.answered"
	evEnded        = "call.ended"
)

type typeCount struct {
	total   int
	keys    map[string]int // logical key (Call-ID) -> times seen
	ids     map[string]int // Routr-Event-Id -> times seen
	noKey   int            // events whose key could not be read
	badJSON int
	causes  map[string]int // call.ended: by hangupCause
}

type stepCount struct {
	types map[string]*typeCount
	last  time.Time // when the last event of this step arrived
}

type counter struct {
	nc      *nats.Conn
	sub     *nats.Subscription
	subject string

	mu          sync.Mutex
	steps       map[string]*stepCount // by step tag; "" = untagged
	errs        []string
	dropped     int // slow-consumer drops seen by the client
	disconnects int // the subscriber lost its connection: events may be missing
}

func newCounter(url, base string) (*counter, error) {
	c := &counter{steps: map[string]*stepCount{}, subject: base + ".>"}
	nc, err := nats.Connect(url,
		nats.Name("routr bench counter"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(200*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.nc != nil && !c.nc.IsClosed() {
				c.disconnects++
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			c.mu.Lock()
			defer c.mu.Unlock()
			if err == nats.ErrSlowConsumer {
				c.dropped++
			}
			if len(c.errs) < 20 {
				c.errs = append(c.errs, err.Error())
			}
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("subscriber: connect %s: %w", url, err)
	}
	prefix := base + "."
	sub, err := nc.Subscribe(c.subject, func(m *nats.Msg) {
		c.record(strings.TrimPrefix(m.Subject, prefix), m)
	})
	if err != nil {
		nc.Close()
		return nil, err
	}
	// Never drop on our side: a drop here would read as an event lost by
	// the edge.
	_ = sub.SetPendingLimits(-1, -1)
	if err := nc.Flush(); err != nil {
		nc.Close()
		return nil, err
	}
	c.mu.Lock()
	c.nc, c.sub = nc, sub
	c.mu.Unlock()
	return c, nil
}

type payload struct {
	CallID       string            `json:"callId"`
	HangupCause  string            `json:"hangupCause"`
	ExtraHeaders map[string]string `json:"extraHeaders"`
}

func (c *counter) record(typ string, m *nats.Msg) {
	var p payload
	jerr := json.Unmarshal(m.Data, &p)
	key := p.CallID
	if typ == evRegistered || typ == evUnregistered {
		key = ""
		for k, v := range p.ExtraHeaders {
			if strings.EqualFold(k, "X-Bench-Id") {
				key = v
			}
		}
	}
	step := stepOf(key)
	id := m.Header.Get("Routr-Event-Id")

	c.mu.Lock()
	defer c.mu.Unlock()
	sc := c.steps[step]
	if sc == nil {
		sc = &stepCount{types: map[string]*typeCount{}}
		c.steps[step] = sc
	}
	sc.last = time.Now()
	tc := sc.types[typ]
	if tc == nil {
		tc = &typeCount{keys: map[string]int{}, ids: map[string]int{}, causes: map[string]int{}}
		sc.types[typ] = tc
	}
	tc.total++
	if jerr != nil {
		tc.badJSON++
	}
	if key == "" {
		tc.noKey++
	} else {
		tc.keys[key]++
	}
	if id != "" {
		tc.ids[id]++
	}
	if p.HangupCause != "" {
		tc.causes[p.HangupCause]++
	}
}

// causes returns the hangup causes of the call.ended events of step.
func (c *counter) causes(step string) map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	if sc := c.steps[step]; sc != nil && sc.types[evEnded] != nil {
		for k, v := range sc.types[evEnded].causes {
			out[k] = v
		}
	}
	return out
}

// stepOf extracts the step tag from "b<tag>-...".
func stepOf(key string) string {
	if !strings.HasPrefix(key, "b") {
		return ""
	}
	i := strings.IndexByte(key, '-')
	if i < 0 {
		return ""
	}
	return key[:i]
}

// eventStats is what the report says about one event type in one step.
type eventStats struct {
	Expected   int `json:"expected"`
	Received   int `json:"received"`
	Unique     int `json:"unique"`
	Lost       int `json:"lost"`
	Duplicated int `json:"duplicated"`
	// SameID counts deliveries of an event id already received (a
	// re-publish); Duplicated also counts a second event for the same
	// call or REGISTER under a new id (a double fire).
	SameID int `json:"same_id,omitempty"`
	// Extra counts events for calls sipp did not complete (failed ones
	// the edge saw): expected, not an error.
	Extra      int      `json:"extra,omitempty"`
	NoKey      int      `json:"no_key,omitempty"`
	LostSample []string `json:"lost_sample,omitempty"` // Call-IDs, to look up in the step's files
}

// stats compares the events of typ in step with ok, the Call-IDs of the
// calls (or REGISTERs) sipp completed: each of them must have exactly one
// event. When ok is nil (no sipp log), only counts are compared.
func (c *counter) stats(step, typ string, ok map[string]bool, expected int) eventStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := eventStats{Expected: expected}
	var keys map[string]int
	if sc := c.steps[step]; sc != nil && sc.types[typ] != nil {
		tc := sc.types[typ]
		keys = tc.keys
		s.Received = tc.total
		s.NoKey = tc.noKey
		for _, n := range tc.ids {
			if n > 1 {
				s.SameID += n - 1
			}
		}
	}
	s.Unique = len(keys)
	for _, n := range keys {
		if n > 1 {
			s.Duplicated += n - 1
		}
	}
	if ok == nil {
		if d := expected - s.Unique; d > 0 {
			s.Lost = d
		} else {
			s.Extra = -d
		}
		return s
	}
	for id := range ok {
		if keys[id] == 0 {
			s.Lost++
			if len(s.LostSample) < 3 {
				s.LostSample = append(s.LostSample, id)
			}
		}
	}
	for id := range keys {
		if !ok[id] {
			s.Extra++
		}
	}
	return s
}

// otherTypes lists event types seen in step other than the given ones.
func (c *counter) otherTypes(step string, known ...string) map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	sc := c.steps[step]
	if sc == nil {
		return out
	}
outer:
	for t, tc := range sc.types {
		for _, k := range known {
			if t == k {
				continue outer
			}
		}
		out[t] = tc.total
	}
	return out
}

// total is the number of events of step received so far, all types.
func (c *counter) total(step string) (n int, last time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sc := c.steps[step]
	if sc == nil {
		return 0, time.Time{}
	}
	for _, tc := range sc.types {
		n += tc.total
	}
	return n, sc.last
}

func (c *counter) slowConsumerDrops() (drops, disconnects int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped, c.disconnects
}

func (c *counter) close() {
	if c == nil || c.nc == nil {
		return
	}
	_ = c.nc.Drain()
	c.nc.Close()
}

// unended returns how many calls of step have a call.started and no
// call.ended, and up to n of their Call-IDs.
func (c *counter) unended(step string, n int) (int, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sc := c.steps[step]
	if sc == nil || sc.types[evStarted] == nil {
		return 0, nil
	}
	var ended map[string]int
	if tc := sc.types[evEnded]; tc != nil {
		ended = tc.keys
	}
	count := 0
	var sample []string
	for id := range sc.types[evStarted].keys {
		if ended[id] == 0 {
			count++
			if len(sample) < n {
				sample = append(sample, id)
			}
		}
	}
	return count, sample
}
