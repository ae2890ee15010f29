package edge

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/emiago/sipgo/sip"
)

// branchMagic starts every Via branch the edge writes: the RFC 3261 cookie,
// then "rg" so our own Vias are recognisable, then the loop hash.
const branchMagic = "z9hG4bKrg"

// loopHash hashes what RFC 3261 16.6 step 8 says identifies a request at a
// proxy, less the topmost Via: if the same request comes back to us with
// the same hash, it is a loop; a spiral changes the Request-URI and so the
// hash.
func loopHash(req *sip.Request) string {
	// FNV-1a 64 inline, over the same bytes as hash/fnv would see, without
	// the allocations of a hash.Hash and of each []byte conversion.
	h := fnvHash(fnvOffset)
	buf := respBufPool.Get().(*bytes.Buffer)
	buf.Reset()
	req.Recipient.StringWrite(buf)
	h = h.bytes(buf.Bytes())
	respBufPool.Put(buf)
	if f := req.From(); f != nil {
		t, _ := f.Params.Get("tag")
		h = h.str(t)
	}
	h = h.byte(0)
	if t := req.To(); t != nil {
		tag, _ := t.Params.Get("tag")
		h = h.str(tag)
	}
	h = h.byte(0)
	if c := req.CallID(); c != nil {
		h = h.str(c.Value())
	}
	if c := req.CSeq(); c != nil {
		var n [20]byte
		h = h.bytes(strconv.AppendUint(n[:0], uint64(c.SeqNo), 10))
	}
	if p := firstHeader(req, "proxy-require"); p != nil {
		h = h.str(p.Value())
	}
	// The first 4 bytes of the big-endian sum, in hex.
	var out [8]byte
	hex.Encode(out[:], []byte{byte(h >> 56), byte(h >> 48), byte(h >> 40), byte(h >> 32)})
	return string(out[:])
}

type fnvHash uint64

const (
	fnvOffset fnvHash = 14695981039346656037
	fnvPrime  fnvHash = 1099511628211
)

func (h fnvHash) byte(c byte) fnvHash { return (h ^ fnvHash(c)) * fnvPrime }

func (h fnvHash) str(s string) fnvHash {
	for i := 0; i < len(s); i++ {
		h = (h ^ fnvHash(s[i])) * fnvPrime
	}
	return h
}

func (h fnvHash) bytes(b []byte) fnvHash {
	for _, c := range b {
		h = (h ^ fnvHash(c)) * fnvPrime
	}
	return h
}

// newBranch returns a Via branch for forwarding req.
func newBranch(req *sip.Request) string {
	return branchMagic + loopHash(req) + "." + sip.GenerateBranchN(10)[len("z9hG4bK."):]
}

// isLoop reports whether req already went through this edge unchanged.
func (s *Server) isLoop(req *sip.Request) bool {
	var hash string
	for _, h := range req.Headers() {
		v, ok := h.(*sip.ViaHeader)
		if !ok {
			continue
		}
		b, _ := v.Params.Get("branch")
		if !strings.HasPrefix(b, branchMagic) || !s.addrs.isOurs(v.Host, v.Port) {
			continue
		}
		if hash == "" {
			hash = loopHash(req)
		}
		if strings.HasPrefix(b[len(branchMagic):], hash) {
			return true
		}
	}
	return false
}

// routeToken keys the token written into the edge's Record-Route. An
// in-dialog request is routed without authentication only when its Route
// carries a token made for its Call-ID: no header a client can forge opens
// a relay through the edge.
type routeToken struct {
	secret []byte
	// macs pools HMACs keyed with secret: one is needed for every
	// Record-Route written and every Route checked (three per call), and
	// a new one is six allocations.
	macs *sync.Pool
}

func newRouteToken(secret []byte) routeToken {
	return routeToken{secret: secret, macs: &sync.Pool{New: func() any { return hmac.New(sha256.New, secret) }}}
}

func (t routeToken) make(callID string) string {
	m := t.macs.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(callID))
	var sum [32]byte
	tok := base64.RawURLEncoding.EncodeToString(m.Sum(sum[:0])[:9])
	t.macs.Put(m)
	return tok
}

func (t routeToken) valid(callID, token string) bool {
	return hmac.Equal([]byte(t.make(callID)), []byte(token))
}

// recordRoute builds our Record-Route entry facing peer over transport.
func (s *Server) recordRoute(transport string, peer netip.Addr, callID string) *sip.RecordRouteHeader {
	host, port := s.addrs.hostPort(transport, peer)
	u := sip.Uri{Scheme: "sip", Host: host, Port: port, UriParams: sip.NewParams()}
	u.UriParams.Add("transport", strings.ToLower(transport))
	u.UriParams.Add("lr", "")
	u.UriParams.Add("rt", s.rr.make(callID))
	return &sip.RecordRouteHeader{Address: u}
}

// markDoubled flags the two Record-Route entries of a request that
// crosses from one transport or interface to another with r2=on (RFC 5658
// section 4), so that every hop knows they belong together.
func markDoubled(rrs ...*sip.RecordRouteHeader) {
	for _, rr := range rrs {
		rr.Address.UriParams.Add("r2", "on")
	}
}

// via builds our Via for a request sent to peer over transport.
func (s *Server) via(transport string, peer netip.Addr, branch string) *sip.ViaHeader {
	host, port := s.addrs.hostPort(transport, peer)
	v := &sip.ViaHeader{
		ProtocolName:    "SIP",
		ProtocolVersion: "2.0",
		Transport:       upperTransport(transport),
		Host:            host,
		Port:            port,
		Params:          sip.NewParams(),
	}
	v.Params.Add("branch", branch)
	v.Params.Add("rport", "")
	return v
}

// isOurRoute reports whether u is a Route the edge wrote.
func (s *Server) isOurRoute(u sip.Uri) bool {
	return u.UriParams.Has("rt") && s.addrs.isOurs(u.Host, u.Port)
}

// popOurRoutes removes the Route entries at the top of req that are ours
// (one, or two after Record-Route doubling) and reports whether at least
// one carried a valid token for the Call-ID.
func (s *Server) popOurRoutes(req *sip.Request, callID string) (found, valid bool) {
	for i := 0; i < 2; i++ {
		rt := req.Route()
		if rt == nil || !s.isOurRoute(rt.Address) {
			break
		}
		found = true
		tok, _ := rt.Address.UriParams.Get("rt")
		if s.rr.valid(callID, tok) {
			valid = true
		}
		removeFirstRoute(req)
	}
	return found, valid
}

// removeFirstRoute drops the first Route value. sipgo keeps one header per
// value, so removing the first "Route" header drops exactly one hop.
func removeFirstRoute(req *sip.Request) {
	req.RemoveHeader("Route")
}
