package auth

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// replayCache remembers the fingerprints of the last size accepted
// responses in a ring, evicting the oldest, so its memory is fixed
// (about 8 bytes of ring and one map slot per entry).
type replayCache struct {
	seed    maphash.Seed
	replays atomic.Uint64

	mu   sync.Mutex
	ring []uint64
	pos  int
	set  map[uint64]struct{}
}

func newReplayCache(size int) *replayCache {
	return &replayCache{
		seed: maphash.MakeSeed(),
		ring: make([]uint64, size),
		set:  make(map[uint64]struct{}, size),
	}
}

// seen records the response and reports whether it was already recorded.
// A 64-bit keyed hash stands for the tuple: with a random seed an attacker
// cannot aim for collisions, and accidental ones are ~size/2^64 per check.
func (r *replayCache) seen(nonce, cnonce, nc, response string) bool {
	var h maphash.Hash
	h.SetSeed(r.seed)
	h.WriteString(nonce)
	h.WriteByte(0)
	h.WriteString(cnonce)
	h.WriteByte(0)
	h.WriteString(nc)
	h.WriteByte(0)
	h.WriteString(response)
	k := h.Sum64()
	if k == 0 { // 0 marks an empty ring slot
		k = 1
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.set[k]; ok {
		r.replays.Add(1)
		return true
	}
	if old := r.ring[r.pos]; old != 0 {
		delete(r.set, old)
	}
	r.ring[r.pos] = k
	r.set[k] = struct{}{}
	r.pos++
	if r.pos == len(r.ring) {
		r.pos = 0
	}
	return false
}

func (r *replayCache) stats() Stats {
	r.mu.Lock()
	n := len(r.set)
	r.mu.Unlock()
	return Stats{Replays: r.replays.Load(), ReplayCacheEntries: n}
}
