package location

// A per-shard binary min-heap of entries on exp, with each entry's index
// kept in entry.hi so that refreshes and removals are O(log n).

func (s *shard) heapPush(e *entry) {
	e.hi = int32(len(s.heap))
	s.heap = append(s.heap, e)
	s.heapUp(int(e.hi))
}

func (s *shard) heapRemove(e *entry) {
	i, last := int(e.hi), len(s.heap)-1
	if i != last {
		s.heapSwap(i, last)
	}
	s.heap[last] = nil
	s.heap = s.heap[:last]
	if i != last {
		s.heapFixAt(i)
	}
	e.hi = -1
	// Give back memory after a mass expiry, but not on every removal.
	if c := cap(s.heap); c > 1024 && len(s.heap) < c/4 {
		s.heap = append([]*entry(nil), s.heap...)
	}
}

func (s *shard) heapFix(e *entry) { s.heapFixAt(int(e.hi)) }

func (s *shard) heapFixAt(i int) {
	if !s.heapDown(i) {
		s.heapUp(i)
	}
}

func (s *shard) heapSwap(i, j int) {
	h := s.heap
	h[i], h[j] = h[j], h[i]
	h[i].hi = int32(i)
	h[j].hi = int32(j)
}

func (s *shard) heapUp(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if s.heap[p].exp <= s.heap[i].exp {
			return
		}
		s.heapSwap(i, p)
		i = p
	}
}

// heapDown reports whether it moved the entry at i.
func (s *shard) heapDown(i int) bool {
	i0, n := i, len(s.heap)
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if r := c + 1; r < n && s.heap[r].exp < s.heap[c].exp {
			c = r
		}
		if s.heap[i].exp <= s.heap[c].exp {
			break
		}
		s.heapSwap(i, c)
		i = c
	}
	return i > i0
}
