//go:build !(linux || darwin || freebsd)

package edge

// newArena returns n bytes for the response cache.
func newArena(_ *responseCache, n int) []byte { return make([]byte, n) }
