package routing

import (
	"cmp"
	"hash/fnv"
	"slices"

	"github.com/routr-go/routr/internal/location"
	"github.com/routr-go/routr/internal/resources"
)

// toPeer routes a call to one registered instance of a peer (registered
// under the peer's aor), as Routr's location service picks one:
//
//   - with session affinity and an affinity value, the same value goes to
//     the same instance while the instances stay the same (a hash; Routr
//     remembers the pairing instead);
//   - least-sessions: the instance that reported the fewest sessions in
//     X-Session-Count;
//   - round-robin (and no algorithm): each call the next instance.
//
// A peer with contactAddr set is reached there instead of at its
// registered contact.
func toPeer(in Input, peer *resources.Peer, affinity string, loc Locator) Decision {
	if !peer.Enabled {
		return reject(404, "Not Found")
	}
	bs := loc(peer.AOR)
	if len(bs) == 0 {
		return reject(480, "Temporarily Unavailable")
	}
	// Lookup orders by recency, which refreshes change: balance over a
	// stable order.
	bs = slices.Clone(bs)
	slices.SortFunc(bs, func(a, b location.Binding) int { return cmp.Compare(a.Contact, b.Contact) })
	var pick location.Binding
	switch {
	case peer.WithSessionAffinity && affinity != "":
		h := fnv.New64a()
		h.Write([]byte(affinity))
		pick = bs[h.Sum64()%uint64(len(bs))]
	case peer.BalancingAlgorithm == resources.LeastSessions:
		pick = slices.MinFunc(bs, func(a, b location.Binding) int { return cmp.Compare(a.SessionCount, b.SessionCount) })
	default:
		pick = bs[in.turn(peer.AOR)%uint64(len(bs))]
	}
	if peer.ContactAddr != "" {
		pick.Contact = "sip:" + peer.Username + "@" + peer.ContactAddr
		pick.Source = ""
	}
	return Decision{AOR: peer.AOR, Peer: peer, Targets: []location.Binding{pick}}
}
