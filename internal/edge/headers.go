package edge

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

// sipgo's GetHeaders lower-cases the name of every header of the message
// on each call, allocating for each one not already in lower case, and
// GetHeader allocates for a name it does not know in lower case: on the
// request path that was ~10% of the edge's CPU under REGISTER load. These
// compare names case-insensitively in place.

type headerList interface{ Headers() []sip.Header }

// firstHeader returns the first header of m called name (any case), or nil.
func firstHeader(m headerList, name string) sip.Header {
	for _, h := range m.Headers() {
		if strings.EqualFold(h.Name(), name) {
			return h
		}
	}
	return nil
}
