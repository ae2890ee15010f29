package edge

import (
	"net"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/emiago/sipgo/sip"
)

// earlyDrop drops UDP datagrams from banned sources as they are read,
// before sipgo parses them. The guard in the handler chain would drop them
// too, but only after a parse, a transaction and a goroutine each: under a
// flood from a banned source that work is what starves everyone else (a
// legitimate agent's REGISTER went unanswered for seconds). Here a
// datagram from a banned source costs one map lookup.
//
// Only UDP: over TCP and WebSocket sipgo hands the filter stream chunks,
// not messages, and dropping a chunk would corrupt the stream once the
// ban ends; a banned stream source costs one connection, which the
// connection limits bound.
type earlyDrop struct {
	guard atomic.Pointer[guard]
}

// filter is a sip.TransportReadFilter: an empty result drops the data.
func (d *earlyDrop) filter(p sip.TransportReadProps, data []byte) ([]byte, error) {
	g := d.guard.Load()
	if g == nil || !strings.EqualFold(p.Transport, "udp") {
		return data, nil
	}
	u, ok := p.RemoteAddr.(*net.UDPAddr)
	if !ok {
		return data, nil
	}
	if g.bannedNow(u.AddrPort().Addr().Unmap()) {
		g.dropped.WithLabelValues("banned").Inc()
		return nil, nil
	}
	return data, nil
}

// bannedNow reports whether a is banned right now. It never adds a
// source. Exempt sources (loopback, trusted peers and trunks: much of the
// traffic) are never banned, and are told apart without the lock; that
// also lets through a source the resources came to trust during its ban.
func (g *guard) bannedNow(a netip.Addr) bool {
	if g.exempt(a) { // options and resources only: no lock needed
		return false
	}
	now := g.now()
	g.mu.Lock()
	st := g.sources[a]
	banned := st != nil && now.Before(st.bannedUntil)
	g.mu.Unlock()
	return banned
}

// chainReadFilters joins sipgo read filters, which it takes only one of:
// each gets what the one before let through; the first to drop the data
// (empty result) or fail ends the chain.
func chainReadFilters(fs ...sip.TransportReadFilter) sip.TransportReadFilter {
	return func(p sip.TransportReadProps, data []byte) ([]byte, error) {
		for _, f := range fs {
			var err error
			if data, err = f(p, data); err != nil || len(data) == 0 {
				return nil, err
			}
		}
		return data, nil
	}
}
