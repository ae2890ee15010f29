package edge

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/emiago/sipgo/sip"
)

// sipgo resolves host names with the resolver its user agent is given, for
// the requests the edge sends (a trunk or a Contact named by host name,
// RFC 3263) but also, when it cannot find the connection a request came
// on, for the response: it then looks up the host of the request's top Via
// (or its received parameter) and connects there. A peer that sends a
// request over TCP and resets the connection at once thus had the edge
// look up, and dial, a name of its choosing. Responses go where the
// request came from (RFC 3261 18.2.2, RFC 3581), never to a looked-up
// name, so the resolver given to sipgo only answers lookups whose context
// the edge marked as its own, for requests it sends; any other lookup
// fails at once, without a query leaving the machine.

type dnsAllowedKey struct{}

// withDNS marks ctx as the edge's own request, for which sipgo may
// resolve the destination.
func withDNS(ctx context.Context) context.Context {
	return context.WithValue(ctx, dnsAllowedKey{}, true)
}

var errNoDNS = errors.New("edge: no DNS lookup for a name a request's Via gave")

// sipResolver is the resolver sipgo uses. It is the pure Go resolver, the
// one that takes a Dial function (it reads /etc/hosts and
// /etc/resolv.conf); its queries go out as net.DefaultResolver's would.
func sipResolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			if ctx.Value(dnsAllowedKey{}) == nil {
				return nil, errNoDNS
			}
			if dial := net.DefaultResolver.Dial; dial != nil {
				return dial(ctx, network, address)
			}
			var d net.Dialer
			return d.DialContext(ctx, network, address)
		},
	}
}

// writeRequest sends req outside any transaction (an ACK), resolving its
// destination if need be; it is sipgo's Client.WriteRequest with the
// lookup allowed.
func (s *Server) writeRequest(req *sip.Request) error {
	conn, err := s.ua.TransportLayer().ClientRequestConnection(withDNS(context.Background()), req)
	if err != nil {
		return fmt.Errorf("connection for %s to %s: %w", req.Method, req.Destination(), err)
	}
	defer func() { _, _ = conn.TryClose() }()
	if err := conn.WriteMsg(req); err != nil {
		return fmt.Errorf("write %s to %s: %w", req.Method, req.Destination(), err)
	}
	return nil
}
