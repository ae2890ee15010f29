//go:build !linux

package edge

import "syscall"

// reusePortControl is nil where the edge does not use SO_REUSEPORT: one
// UDP socket per listener.
var reusePortControl func(network, address string, c syscall.RawConn) error
