//go:build !race

package auth

// raceEnabled skips allocation counts, which the race detector changes.
const raceEnabled = false
