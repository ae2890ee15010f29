package edge

import (
	"context"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/routr-go/routr/internal/location"
	"github.com/routr-go/routr/internal/resources"
	"github.com/routr-go/routr/internal/routing"
)

// hopSilence is how long a trunk hop may stay silent (not even 100
// Trying) before the next hop is tried. A provider that is up answers
// within milliseconds; one that is down would otherwise hold the call
// for Timer B (32 s).
const hopSilence = 2 * time.Second

// hopper sends a request to the PSTN through a trunk's outbound URIs one
// after the other: the next when one is silent or fails with 408 or 5xx,
// answering the provider's digest challenge once per hop with the trunk's
// outbound credentials.
type hopper struct {
	s     *Server
	r     *Request
	base  *sip.Request
	hops  []routing.Hop
	at    int
	cred  *resources.Credentials
	trunk string
}

func (s *Server) newHopper(r *Request, base *sip.Request, d routing.Decision) *hopper {
	h := &hopper{s: s, r: r, base: base, hops: d.Hops}
	if d.Trunk != nil {
		h.cred, h.trunk = d.Trunk.OutboundCredentials, d.Trunk.Ref
	}
	return h
}

// next returns a branch to the next usable hop, nil when none is left.
func (h *hopper) next() *branch {
	for h.at < len(h.hops) {
		hop := h.hops[h.at]
		h.at++
		b, err := h.s.branchTo(h.r, h.base, location.Binding{Contact: hop.URI, Transport: hop.Transport}, true)
		if err != nil {
			h.s.log.Warn("unusable trunk URI", "trunk", h.trunk, "uri", hop.URI, "error", err)
			continue
		}
		b.silent = time.After(hopSilence)
		h.s.fromListener(b.req)
		return b
	}
	return nil
}

// clientRequest starts a client transaction for req. When req asks to
// leave from our listener and sipgo cannot use it (the listener is bound
// but not serving yet), it leaves from a socket of sipgo's choosing
// rather than not at all.
func (s *Server) clientRequest(req *sip.Request) (sip.ClientTransaction, error) {
	tx, err := s.client.TransactionRequest(withDNS(context.Background()), req, asIs)
	if err != nil && req.Laddr.Port != 0 {
		req.Laddr = sip.Addr{}
		tx, err = s.client.TransactionRequest(withDNS(context.Background()), req, asIs)
	}
	return tx, err
}

// fromListener makes a UDP request to a provider leave from our listener,
// the address its Via names, rather than from a fresh socket: sipgo only
// reuses the listener for addresses it has heard from, and providers
// expect their trunk's traffic from one address.
func (s *Server) fromListener(req *sip.Request) {
	if !strings.EqualFold(req.Transport(), "udp") {
		return
	}
	if ap := s.Addr("udp"); ap.IsValid() {
		req.Laddr = sip.Addr{IP: ap.Addr().AsSlice(), Port: int(ap.Port())}
	}
}

// again is the hopper's retryFunc.
func (h *hopper) again(b *branch, res *sip.Response, err error) *branch {
	if res != nil && (res.StatusCode == 401 || res.StatusCode == 407) {
		if b.authAnswered || h.cred == nil {
			return nil
		}
		nb, aerr := h.authorize(b, res)
		if aerr != nil {
			h.s.log.Warn("trunk challenge not answered", "trunk", h.trunk, "error", aerr)
			return nil
		}
		return nb
	}
	if res != nil && res.StatusCode != 408 && res.StatusCode < 500 {
		return nil
	}
	if res != nil && res.StatusCode >= 600 {
		return nil // a global failure: no other hop will do better
	}
	h.s.log.Debug("trunk hop failed, trying the next", "trunk", h.trunk, "dest", b.req.Destination(), "status", status(res), "error", err)
	return h.next()
}

func status(res *sip.Response) int {
	if res == nil {
		return 0
	}
	return res.StatusCode
}

// authorize copies the branch's request with a new Via branch and the
// digest answer to the provider's challenge. The CSeq stays: the caller's
// later in-dialog requests carry its own numbering, which the provider
// must see rise.
func (h *hopper) authorize(b *branch, res *sip.Response) (*branch, error) {
	req, err := answerChallenge(b.req, res, h.cred)
	if err != nil {
		return nil, err
	}
	if v := req.Via(); v != nil {
		v.Params.Add("branch", newBranch(req))
	}
	return &branch{req: req, authAnswered: true, silent: time.After(hopSilence)}, nil
}

type edgeError string

func (e edgeError) Error() string { return string(e) }

const errNoChallenge = edgeError("no usable digest challenge")

// nextTurn is routing's Turn: how many calls were balanced over key (a
// peer AOR or a trunk) before this one. Keys come from resources, so the
// counters are as many as they are.
func (s *Server) nextTurn(key string) uint64 {
	if s.opts.Cluster.Turns != nil {
		return s.opts.Cluster.Turns(key)
	}
	c, ok := s.turns.Load(key)
	if !ok {
		c, _ = s.turns.LoadOrStore(key, new(atomic.Uint64))
	}
	return c.(*atomic.Uint64).Add(1) - 1
}
