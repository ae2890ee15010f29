package edge

import (
	"context"
	"fmt"
	"net"
	"runtime"
)

// listenUDP binds n UDP sockets to addr. sipgo reads and parses each
// socket on one goroutine, so one socket caps the edge at one core's worth
// of parsing and the kernel drops datagrams once that core is busy; with
// SO_REUSEPORT the kernel spreads datagrams over the sockets by source
// address and port, so each peer's messages stay on one socket, in order.
// All sockets share the local address, so whichever sipgo sends from, the
// packet leaves from the advertised port. Where SO_REUSEPORT is not
// available (reusePortControl is nil), one socket.
func listenUDP(addr string, n int) ([]net.PacketConn, error) {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	if reusePortControl == nil || n == 1 {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, err
		}
		return []net.PacketConn{pc}, nil
	}
	lc := net.ListenConfig{Control: reusePortControl}
	first, err := lc.ListenPacket(context.Background(), "udp", addr)
	if err != nil {
		return nil, err
	}
	pcs := []net.PacketConn{first}
	// Port 0 picked a port: the others join that one.
	bound := first.LocalAddr().String()
	for len(pcs) < n {
		pc, err := lc.ListenPacket(context.Background(), "udp", bound)
		if err != nil {
			for _, p := range pcs {
				_ = p.Close()
			}
			return nil, fmt.Errorf("socket %d of %d on %s: %w", len(pcs)+1, n, bound, err)
		}
		pcs = append(pcs, pc)
	}
	return pcs, nil
}
