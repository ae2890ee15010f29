package edge

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"sync"

	"github.com/emiago/sipgo/sip"

	"github.com/routr-go/routr/internal/location"
)

// flowFilter is the location store as the edge sees it: lookups leave out
// the bindings registered over a connection (tcp, tls, ws, wss) that has
// since closed. Such an agent can only be reached over the connection it
// opened (RFC 7118 clients accept none, and the port a TCP client
// connected from listens for nothing), so trying would only dial a dead
// address. The binding itself stays until it expires or the agent
// registers again over a new connection, which replaces it.
type flowFilter struct {
	location.Store
	conns *connTracker
	// self is this instance in Binding.Instance; handOver says whether
	// bindings over another instance's connections are reached through
	// it (ClusterOptions).
	self     string
	handOver bool
	up       func(instance string) bool // nil: every instance is taken as up
}

// Lookup returns the bindings of aor that can still be reached.
func (f flowFilter) Lookup(ctx context.Context, aor string) ([]location.Binding, error) {
	bs, err := f.Store.Lookup(ctx, aor)
	if err != nil {
		return bs, err
	}
	for i, b := range bs {
		if f.alive(b) {
			continue
		}
		// Copy only when something goes: the store's slice may be shared.
		out := append([]location.Binding(nil), bs[:i]...)
		for _, b := range bs[i+1:] {
			if f.alive(b) {
				out = append(out, b)
			}
		}
		return out, nil
	}
	return bs, nil
}

// alive reports whether b can still be reached: over UDP always, over a
// stream transport while the connection it registered over is open.
func (f flowFilter) alive(b location.Binding) bool {
	tp := strings.ToLower(b.Transport)
	if tp == "" || tp == "udp" || b.Source == "" {
		return true
	}
	if b.Instance != "" && b.Instance != f.self {
		return f.handOver && (f.up == nil || f.up(b.Instance))
	}
	return f.conns.alive(b.Source)
}

// callerVanished is closed when the server transaction of a request ends
// because its connection closed (sipgo ends the transactions of a closed
// connection at once): a WebRTC caller that closes its tab while the call
// rings. The proxy then cancels the branches instead of letting the
// callees ring for nobody.
func callerVanished(tx sip.ServerTransaction) <-chan struct{} {
	ch := make(chan struct{})
	var once sync.Once
	tx.OnTerminate(func(_ string, err error) {
		if errors.Is(err, sip.ErrTransactionTransport) {
			once.Do(func() { close(ch) })
		}
	})
	return ch
}

// errNoFlow says the next hop is a WebSocket peer the edge has no
// connection to.
var errNoFlow = errors.New("no connection to the WebSocket peer")

// noFlow reports whether dest, over ws or wss, is a peer the edge holds no
// connection to. RFC 7118 clients accept no connections, and their hosts
// are often .invalid names: dialing would only look up a name that cannot
// exist, or wait minutes on an address behind NAT.
func (s *Server) noFlow(transport, dest string) bool {
	if transport != "ws" && transport != "wss" || s.conns.alive(dest) {
		return false
	}
	// A connection the edge opened itself (to a server) is in sipgo's pool;
	// an accepted one may still be there for a moment after it failed.
	if pool := s.ua.TransportLayer().Pool(transport); pool != nil {
		if c := pool.Get(dest); c != nil {
			c.Ref(-1) // Get took a reference
			return accepted(c)
		}
	}
	return true
}

// accepted reports whether c is a WebSocket connection a peer opened to
// the edge (rather than one the edge dialed).
func accepted(c sip.Connection) bool {
	wc, ok := c.(*sip.WSConnection)
	if !ok {
		return false
	}
	nc := wc.Conn
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	_, ok = nc.(*trackedConn)
	return ok
}

// peerGone answers an in-dialog request whose next hop vanished with 480;
// a BYE still ends the call.
func (s *Server) peerGone(r *Request) {
	s.reply(r, 480, "Temporarily Unavailable")
	if r.Method == sip.BYE {
		s.opts.Calls.Bye(r.CallID(), 480, xHeaders(r.Request))
	}
}
