package edge

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
)

// advertiser decides which address the edge writes into Via, Record-Route
// and Contact: an external address for peers outside the local networks,
// the local interface address for peers inside (as Routr does).
type advertiser struct {
	external  []string
	localnets []netip.Prefix

	mu        sync.RWMutex
	listeners []boundListener
	localIPs  []netip.Addr
}

// newAdvertiser builds the advertiser. Without localnets, the networks of
// the edge's own interfaces are local (as the configuration documents):
// a peer on one of them is reached on the interface address, any other
// peer on the external address.
func newAdvertiser(external []string, localnets []netip.Prefix) *advertiser {
	a := &advertiser{external: external, localnets: localnets}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, ad := range addrs {
			p, err := netip.ParsePrefix(ad.String())
			if err != nil {
				continue
			}
			a.localIPs = append(a.localIPs, p.Addr().Unmap())
			if len(localnets) == 0 && !p.Addr().IsLoopback() {
				a.localnets = append(a.localnets, p.Masked())
			}
		}
	}
	return a
}

func (a *advertiser) setListeners(ls []boundListener) {
	a.mu.Lock()
	a.listeners = ls
	a.mu.Unlock()
}

// listener returns the bound listener for a transport (first one wins).
func (a *advertiser) listener(transport string) (boundListener, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	transport = strings.ToLower(transport)
	for _, l := range a.listeners {
		if l.protocol == transport {
			return l, true
		}
	}
	return boundListener{}, false
}

// hostPort is the address to advertise to peer over transport.
func (a *advertiser) hostPort(transport string, peer netip.Addr) (string, int) {
	l, ok := a.listener(transport)
	port := 0
	var bindIP netip.Addr
	if ok {
		port = int(l.addr.Port())
		bindIP = l.addr.Addr().Unmap()
	}
	if len(a.external) > 0 && peer.IsValid() && !a.isLocal(peer) {
		host := a.external[0]
		if h, p, err := net.SplitHostPort(host); err == nil {
			if pn, err := strconv.Atoi(p); err == nil {
				return h, pn
			}
		}
		return host, port
	}
	if bindIP.IsValid() && !bindIP.IsUnspecified() {
		return bindIP.String(), port
	}
	return a.localIPFor(peer).String(), port
}

// isLocal reports whether peer is in a configured local network (or on
// loopback, which is always local).
func (a *advertiser) isLocal(peer netip.Addr) bool {
	peer = peer.Unmap()
	if peer.IsLoopback() {
		return true
	}
	for _, p := range a.localnets {
		if p.Contains(peer) {
			return true
		}
	}
	return false
}

// localIPFor picks the local interface address facing peer: loopback for
// loopback peers, else an address on the same subnet, else the first
// non-loopback address.
func (a *advertiser) localIPFor(peer netip.Addr) netip.Addr {
	peer = peer.Unmap()
	if !peer.IsValid() || peer.IsLoopback() {
		return netip.MustParseAddr("127.0.0.1")
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		var first netip.Addr
		for _, ad := range addrs {
			p, err := netip.ParsePrefix(ad.String())
			if err != nil || p.Addr().IsLoopback() || p.Addr().Is4() != peer.Is4() {
				continue
			}
			if p.Contains(peer) {
				return p.Addr().Unmap()
			}
			if !first.IsValid() {
				first = p.Addr().Unmap()
			}
		}
		if first.IsValid() {
			return first
		}
	}
	return netip.MustParseAddr("127.0.0.1")
}

// isOurs reports whether host[:port] addresses this edge: one of our
// listener or interface addresses or an external address, and (when a
// port is given) one of our listening ports.
func (a *advertiser) isOurs(host string, port int) bool {
	host = strings.Trim(host, "[]")
	a.mu.RLock()
	defer a.mu.RUnlock()
	if port == 0 {
		port = 5060
	}
	portOK := false
	for _, l := range a.listeners {
		if int(l.addr.Port()) == port {
			portOK = true
		}
	}
	for _, e := range a.external {
		h := e
		if hh, _, err := net.SplitHostPort(e); err == nil {
			h = hh
		}
		if strings.EqualFold(h, host) {
			return portOK
		}
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	if !portOK {
		return false
	}
	for _, l := range a.listeners {
		la := l.addr.Addr().Unmap()
		if la == ip || (la.IsUnspecified() && a.isInterfaceIP(ip)) {
			return true
		}
	}
	return false
}

func (a *advertiser) isInterfaceIP(ip netip.Addr) bool {
	if ip.IsLoopback() {
		return true
	}
	for _, l := range a.localIPs {
		if l == ip {
			return true
		}
	}
	return false
}
