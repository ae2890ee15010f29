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
// Tests talk to loopback only, so DNS is switched off: sipgo resolves the
// host names in Vias before answering over UDP (the RFC 4475 messages name
// hosts under example.com), and those queries would otherwise leave the
// machine and, waiting on the network, outlive their test. Host names in
// /etc/hosts (localhost) still resolve.
// dnsQueries counts the DNS queries tests tried to send.
var dnsQueries atomic.Int64

func TestMain(m *testing.M) {
	net.DefaultResolver.PreferGo = true
	net.DefaultResolver.Dial = func(context.Context, string, string) (net.Conn, error) {
		dnsQueries.Add(1)
		return nil, errors.New("no DNS in tests")
	}
	goleak.VerifyTestMain(m)
}
