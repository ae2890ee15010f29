package edge

import (
	"context"
	"errors"
	"net"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// edge, phone and connection a test starts must be gone when it ends.
//
// Tests talk to loopback only, so DNS is switched off: sipgo resolves the
// host names in Vias before answering over UDP (the RFC 4475 messages name
// hosts under example.com), and those queries would otherwise leave the
// machine and, waiting on the network, outlive their test. Host names in
// /etc/hosts (localhost) still resolve.
func TestMain(m *testing.M) {
	net.DefaultResolver.PreferGo = true
	net.DefaultResolver.Dial = func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("no DNS in tests")
	}
	goleak.VerifyTestMain(m,
		// Known leak at shutdown, left to the drain work: a UDP request
		// read just before its listener closes is handled by sipgo in the
		// background; by then the listener is gone from sipgo's pool, so
		// sipgo opens a new UDP socket to answer, after the edge closed
		// its user agent, and that socket's reader never ends
		// (TestGuardFloodSparesOtherSources hits it under load). Found
		// with GODEBUG=tracebackancestors.
		goleak.IgnoreAnyFunction("github.com/emiago/sipgo/sip.(*TransportUDP).readUDPConnection"),
	)
}
