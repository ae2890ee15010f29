//go:build linux || darwin || freebsd

package edge

import (
	"runtime"
	"syscall"
)

// newArena returns n bytes for the response cache from an anonymous
// mapping outside the Go heap: the garbage collector's pacing would
// otherwise count the whole arena as live heap and let the heap grow by
// as much again before collecting, and pages the ring has not reached yet
// cost no memory. The mapping is released when owner becomes unreachable.
func newArena(owner *responseCache, n int) []byte {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]byte, n)
	}
	runtime.AddCleanup(owner, func(b []byte) { _ = syscall.Munmap(b) }, b)
	return b
}
