package location

// Operations a [JetStream] store uses to keep its [Memory] a copy of the
// shared bucket: the bucket is the authority, so they skip the checks a
// Put makes (CSeq order, MaxBindings) that its writer already made.

// set stores b as given, replacing the binding with the same AOR and
// Contact unless that one is of a later revision: the watch can deliver
// an entry after this instance wrote a newer one itself. An expired b is
// kept until the sweeper reports it, so that an expiry nobody reported
// while every instance was down is reported once.
func (m *Memory) set(b Binding, rev uint64) {
	s := m.shard(b.AOR)
	s.mu.Lock()
	defer s.mu.Unlock()
	for x := s.aors[b.AOR]; x != nil; x = x.next {
		if x.contact() == b.Contact {
			if x.rev > rev {
				return
			}
			x.rev = rev
			x.store(&b)
			s.heapFix(x)
			s.unlink(x)
			s.link(x)
			return
		}
	}
	m.count.Add(1)
	e := &entry{rev: rev}
	e.store(&b)
	s.link(e)
	s.heapPush(e)
}

// drop removes the binding (aor, contact) without reporting it.
func (m *Memory) drop(aor, contact string) { m.dropUpTo(aor, contact, ^uint64(0)) }

// dropUpTo removes the binding (aor, contact) without reporting it,
// unless it is of a revision later than rev: a deletion the watch
// delivers late must not remove the binding written after it.
func (m *Memory) dropUpTo(aor, contact string, rev uint64) {
	s := m.shard(aor)
	s.mu.Lock()
	defer s.mu.Unlock()
	for x := s.aors[aor]; x != nil; x = x.next {
		if x.contact() == contact {
			if x.rev > rev {
				return
			}
			s.unlink(x)
			s.heapRemove(x)
			m.count.Add(-1)
			return
		}
	}
}

// all returns every binding of aor, expired or not.
func (m *Memory) all(aor string) ([]Binding, error) {
	s := m.shard(aor)
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Binding
	for x := s.aors[aor]; x != nil; x = x.next {
		out = append(out, x.binding())
	}
	return out, nil
}

// get returns the binding (aor, contact), expired or not, and its
// revision.
func (m *Memory) get(aor, contact string) (Binding, uint64, bool) {
	s := m.shard(aor)
	s.mu.RLock()
	defer s.mu.RUnlock()
	for x := s.aors[aor]; x != nil; x = x.next {
		if x.contact() == contact {
			return x.binding(), x.rev, true
		}
	}
	return Binding{}, 0, false
}
