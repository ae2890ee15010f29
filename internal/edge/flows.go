package edge

import (
	"context"
	"strings"

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
	return f.conns.alive(b.Source)
}
