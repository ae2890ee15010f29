package resources

import "hash/maphash"

// A Set finds a resource by its ref, and an agent by domain and username,
// through an index of positions in the slices that hold them: an
// open-addressing hash table of uint32, 4 bytes a slot, where a Go map
// holding the keys and the pointers took 40 to 50 bytes an entry (17 MB
// of the 70 a Set of 100,000 agents with their credentials held).

// index maps keys to positions in a slice the caller holds; the caller
// hashes the keys (with seed) and compares them.
type index struct {
	seed  maphash.Seed
	slots []uint32 // position+1; 0 is an empty slot
}

// newIndex returns an index for n positions, at most 3/4 full.
func newIndex(n int) index {
	size := 8
	for size*3 < n*4 {
		size *= 2
	}
	return index{seed: maphash.MakeSeed(), slots: make([]uint32, size)}
}

// find returns the position whose key is the one hashed to h, as same
// tells, or -1.
func (x *index) find(h uint64, same func(pos int) bool) int {
	if len(x.slots) == 0 {
		return -1
	}
	mask := uint64(len(x.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		p := x.slots[i]
		if p == 0 {
			return -1
		}
		if same(int(p - 1)) {
			return int(p - 1)
		}
	}
}

// insert adds pos under h; the caller has checked that its key is not in
// the index, and inserts at most the n positions newIndex was made for.
func (x *index) insert(h uint64, pos int) {
	mask := uint64(len(x.slots) - 1)
	i := h & mask
	for x.slots[i] != 0 {
		i = (i + 1) & mask
	}
	x.slots[i] = uint32(pos + 1)
}

func (x *index) hash(s string) uint64 { return maphash.String(x.seed, s) }

// hash2 hashes the pair (a, b).
func (x *index) hash2(a, b string) uint64 {
	return maphash.String(x.seed, b) ^ maphash.String(x.seed, a)*0x9e3779b97f4a7c15
}
