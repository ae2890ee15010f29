package edge

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// edge, phone and connection a test starts must be gone when it ends.
//
// Tests talk to loopback only, so DNS is switched off: a lookup the edge
// makes for a request it sends (a destination named by host name) would
// otherwise leave the machine and, waiting on the network, outlive its
// test. Host names in /etc/hosts (localhost) still resolve. dnsQueries
// counts the queries tried, for the tests that check when the edge may
// look a name up (dnsgate_test.go).
func TestMain(m *testing.M) {
	net.DefaultResolver.PreferGo = true
	net.DefaultResolver.Dial = func(context.Context, string, string) (net.Conn, error) {
		dnsQueries.Add(1)
		return nil, errors.New("no DNS in tests")
	}
	goleak.VerifyTestMain(m)
}

// dnsQueries counts the DNS queries tests tried to send.
var dnsQueries atomic.Int64
