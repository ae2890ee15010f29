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
	goleak.VerifyTestMain(m)
}
