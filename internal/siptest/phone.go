// Package siptest provides a scripted SIP phone for tests: it builds
// messages explicitly, sends them over UDP, TCP, TLS, WS or WSS, and hands
// back exactly what arrived, so tests assert on the wire rather than on a
// library's view.
package siptest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/icholy/digest"
)

// Phone is one SIP endpoint on loopback.
type Phone struct {
	User     string
	Domain   string
	Password string
	// Transport is "udp", "tcp", "tls", "ws" or "wss".
	Transport string

	edge   string
	udp    net.PacketConn
	stream net.Conn     // tcp, tls, ws and wss: what SIP is read from and written to
	raw    *net.TCPConn // the socket under stream, for Abort
	br     io.Reader    // ws and wss: buffered bytes of the handshake, then stream
	wmu    sync.Mutex   // ws and wss: one frame at a time
	laddr  *net.TCPAddr
	// wsHost is the RFC 7118 host of a WebSocket phone's Via and
	// Contact: a random name under .invalid, since the client cannot be
	// reached but over its own connection.
	wsHost string
	msgs   chan sip.Message
	done   chan struct{}
	gone   chan struct{} // closed when the reader stops: the edge hung up
	once   sync.Once

	mu   sync.Mutex
	cseq uint32
	// Tag is the phone's From tag for requests it starts.
	Tag string
	// ContactAddr, when set, replaces the phone's own address in its
	// Contact: a phone behind NAT advertises an address nobody can reach.
	ContactAddr string
}

// Options are the settings of a phone that most tests leave alone.
type Options struct {
	// TLS is the client configuration for tls and wss; nil trusts any
	// certificate. Set it to check the edge's certificate or to present
	// a client certificate.
	TLS *tls.Config
	// WSPath is the request path of the WebSocket handshake ("/" if empty).
	WSPath string
	// LocalIP is the address the phone sends from (127.0.0.1 if empty):
	// another interface's address makes it a peer from another network.
	LocalIP string
	// LocalPort is the UDP port the phone listens on (any free one if
	// 0): a fixed one lets it play a provider the resources name.
	LocalPort int
}

// NewPhone opens a phone that talks to the edge at edgeAddr (host:port).
func NewPhone(transport, user, domain, password, edgeAddr string) (*Phone, error) {
	return NewPhoneWith(transport, user, domain, password, edgeAddr, Options{})
}

// NewPhoneWith is NewPhone with options.
func NewPhoneWith(transport, user, domain, password, edgeAddr string, o Options) (*Phone, error) {
	p := &Phone{
		User: user, Domain: domain, Password: password, Transport: transport,
		edge: edgeAddr, msgs: make(chan sip.Message, 256), done: make(chan struct{}),
		gone: make(chan struct{}), cseq: 1, Tag: sip.GenerateTagN(10),
	}
	tlsConf := o.TLS
	if tlsConf == nil {
		tlsConf = &tls.Config{InsecureSkipVerify: true}
	}
	localIP := o.LocalIP
	if localIP == "" {
		localIP = "127.0.0.1"
	}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}}
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		p.raw = c.(*net.TCPConn)
		p.laddr = c.LocalAddr().(*net.TCPAddr)
		return c, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	switch transport {
	case "udp":
		c, err := net.ListenPacket("udp", net.JoinHostPort(localIP, strconv.Itoa(o.LocalPort)))
		if err != nil {
			return nil, err
		}
		p.udp = c
		go p.readUDP()
	case "tcp", "tls":
		c, err := dial(ctx, "tcp", edgeAddr)
		if err != nil {
			return nil, err
		}
		if transport == "tls" {
			tc := tls.Client(c, withServerName(tlsConf, edgeAddr))
			if err := tc.HandshakeContext(ctx); err != nil {
				c.Close()
				return nil, fmt.Errorf("siptest: tls handshake: %w", err)
			}
			c = tc
		}
		p.stream = c
		go p.readStream()
	case "ws", "wss":
		path := o.WSPath
		if path == "" {
			path = "/"
		}
		d := ws.Dialer{Protocols: []string{"sip"}, NetDial: dial, TLSConfig: tlsConf}
		c, br, hs, err := d.Dial(ctx, transport+"://"+edgeAddr+path)
		if err != nil {
			return nil, fmt.Errorf("siptest: websocket handshake: %w", err)
		}
		if hs.Protocol != "sip" {
			c.Close()
			return nil, fmt.Errorf("siptest: edge chose subprotocol %q, want sip (RFC 7118)", hs.Protocol)
		}
		p.stream, p.br = c, io.Reader(c)
		if br != nil {
			p.br = io.MultiReader(br, c)
		}
		p.wsHost = strings.ToLower(sip.GenerateTagN(12)) + ".invalid"
		go p.readWS()
	default:
		return nil, fmt.Errorf("siptest: transport %q", transport)
	}
	return p, nil
}

func withServerName(c *tls.Config, addr string) *tls.Config {
	if c.ServerName != "" || c.InsecureSkipVerify {
		return c
	}
	c = c.Clone()
	c.ServerName, _, _ = net.SplitHostPort(addr)
	return c
}

// Close releases the socket; a WebSocket phone says goodbye first.
func (p *Phone) Close() {
	p.once.Do(func() {
		close(p.done)
		if p.udp != nil {
			p.udp.Close()
		}
		if p.stream != nil {
			if p.wsHost != "" {
				p.wmu.Lock()
				_ = p.stream.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
				_ = ws.WriteFrame(p.stream, ws.MaskFrameInPlace(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))))
				p.wmu.Unlock()
			}
			p.stream.Close()
		}
	})
}

// Abort drops the phone's connection the way a vanished peer does: no
// WebSocket close, no TLS close_notify, a TCP reset instead of a FIN.
func (p *Phone) Abort() {
	p.once.Do(func() {
		close(p.done)
		if p.raw != nil {
			_ = p.raw.SetLinger(0)
			p.raw.Close()
		}
		if p.udp != nil {
			p.udp.Close()
		}
	})
}

// Addr is the phone's own address, host:port.
func (p *Phone) Addr() string {
	if p.udp != nil {
		return p.udp.LocalAddr().String()
	}
	return p.laddr.String()
}

// Port is the phone's own port.
func (p *Phone) Port() int {
	_, port, _ := net.SplitHostPort(p.Addr())
	n, _ := strconv.Atoi(port)
	return n
}

// sentBy is the host and port of the phone's Via: its address, or for
// WebSocket its .invalid name and no port (RFC 7118 section 5).
func (p *Phone) sentBy() (string, int) {
	if p.wsHost != "" {
		return p.wsHost, 0
	}
	host, port, _ := net.SplitHostPort(p.Addr())
	pn, _ := strconv.Atoi(port)
	return host, pn
}

// AOR is sip:user@domain.
func (p *Phone) AOR() string { return "sip:" + p.User + "@" + p.Domain }

// Contact is the phone's contact URI.
func (p *Phone) Contact() string {
	addr := p.Addr()
	if p.wsHost != "" {
		addr = p.wsHost
	}
	if p.ContactAddr != "" {
		addr = p.ContactAddr
	}
	c := "sip:" + p.User + "@" + addr
	if p.Transport != "udp" {
		c += ";transport=" + p.Transport
	}
	return c
}

func (p *Phone) deliver(m sip.Message) bool {
	select {
	case p.msgs <- m:
		return true
	case <-p.done:
		return false
	}
}

func (p *Phone) readUDP() {
	defer close(p.gone)
	buf := make([]byte, 65535)
	for {
		n, from, err := p.udp.ReadFrom(buf)
		if err != nil {
			return
		}
		m, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
		if err != nil {
			continue
		}
		m.SetSource(from.String()) // responses go back there, as RFC 3581 has it
		if !p.deliver(m) {
			return
		}
	}
}

func (p *Phone) readStream() {
	defer close(p.gone)
	br := bufio.NewReader(p.stream)
	for {
		var head bytes.Buffer
		clen := 0
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if head.Len() == 0 && strings.TrimSpace(line) == "" {
				continue // keep-alive CRLF
			}
			head.WriteString(line)
			l := strings.ToLower(line)
			if strings.HasPrefix(l, "content-length:") || strings.HasPrefix(l, "l:") {
				v := strings.TrimSpace(line[strings.Index(line, ":")+1:])
				clen, _ = strconv.Atoi(v)
			}
			if line == "\r\n" || line == "\n" {
				break
			}
		}
		body := make([]byte, clen)
		if _, err := io.ReadFull(br, body); err != nil {
			return
		}
		head.Write(body)
		m, err := sip.ParseMessage(head.Bytes())
		if err != nil {
			continue
		}
		if !p.deliver(m) {
			return
		}
	}
}

// readWS reads one SIP message per WebSocket message (RFC 7118 section 5).
func (p *Phone) readWS() {
	defer close(p.gone)
	rw := struct {
		io.Reader
		io.Writer
	}{p.br, lockedWriter{p}}
	for {
		data, op, err := wsutil.ReadServerData(rw)
		if err != nil {
			return
		}
		if op != ws.OpText && op != ws.OpBinary || len(bytes.TrimSpace(data)) == 0 {
			continue
		}
		m, err := sip.ParseMessage(data)
		if err != nil {
			continue
		}
		if !p.deliver(m) {
			return
		}
	}
}

// lockedWriter lets the WebSocket reader answer control frames without
// interleaving with a message being written.
type lockedWriter struct{ p *Phone }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.wmu.Lock()
	defer w.p.wmu.Unlock()
	return w.p.stream.Write(b)
}

// SendRaw writes bytes to the edge as they are.
func (p *Phone) SendRaw(b []byte) error {
	if p.udp != nil {
		a, err := net.ResolveUDPAddr("udp", p.edge)
		if err != nil {
			return err
		}
		_, err = p.udp.WriteTo(b, a)
		return err
	}
	if p.wsHost != "" {
		p.wmu.Lock()
		defer p.wmu.Unlock()
		return wsutil.WriteClientMessage(p.stream, ws.OpText, b)
	}
	_, err := p.stream.Write(b)
	return err
}

// Send writes a message to the edge; over UDP, a response to a request
// the phone received goes where that request came from (the edge
// instance that sent it, which may not be the phone's own).
func (p *Phone) Send(m sip.Message) error {
	if res, ok := m.(*sip.Response); ok && p.udp != nil && res.Destination() != "" {
		a, err := net.ResolveUDPAddr("udp", res.Destination())
		if err != nil {
			return err
		}
		_, err = p.udp.WriteTo([]byte(m.String()), a)
		return err
	}
	return p.SendRaw([]byte(m.String()))
}

// Next returns the next message that arrives within d. It fails at once
// when the phone's connection has been closed and nothing is left.
func (p *Phone) Next(d time.Duration) (sip.Message, error) {
	select {
	case m := <-p.msgs:
		return m, nil
	default:
	}
	select {
	case m := <-p.msgs:
		return m, nil
	case <-p.gone:
		select {
		case m := <-p.msgs:
			return m, nil
		default:
			return nil, errors.New("siptest: connection closed")
		}
	case <-time.After(d):
		return nil, errors.New("siptest: nothing arrived")
	}
}

// Response waits for the next final or provisional response other than
// 100 Trying to a request of method, skipping requests it meets are not
// retransmissions of interest.
func (p *Phone) Response(method sip.RequestMethod, d time.Duration) (*sip.Response, error) {
	deadline := time.Now().Add(d)
	for {
		m, err := p.Next(time.Until(deadline))
		if err != nil {
			return nil, fmt.Errorf("waiting for a response to %s: %w", method, err)
		}
		res, ok := m.(*sip.Response)
		if !ok || res.StatusCode == 100 {
			continue
		}
		if cs := res.CSeq(); cs != nil && cs.MethodName == method {
			return res, nil
		}
	}
}

// Request waits for the next request of method.
func (p *Phone) Request(method sip.RequestMethod, d time.Duration) (*sip.Request, error) {
	deadline := time.Now().Add(d)
	for {
		m, err := p.Next(time.Until(deadline))
		if err != nil {
			return nil, fmt.Errorf("waiting for %s: %w", method, err)
		}
		if req, ok := m.(*sip.Request); ok && req.Method == method {
			return req, nil
		}
	}
}

// NextCSeq returns a new CSeq number.
func (p *Phone) NextCSeq() uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cseq++
	return p.cseq
}

// NewRequest builds an out-of-dialog request from this phone.
func (p *Phone) NewRequest(method sip.RequestMethod, ruri string, callID string) *sip.Request {
	var u sip.Uri
	if err := sip.ParseUri(ruri, &u); err != nil {
		panic(err)
	}
	req := sip.NewRequest(method, u)
	host, pn := p.sentBy()
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: strings.ToUpper(p.Transport), Host: host, Port: pn, Params: sip.NewParams()}
	via.Params.Add("branch", sip.GenerateBranch())
	via.Params.Add("rport", "")
	req.AppendHeader(via)
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: p.User, Host: p.Domain}, Params: sip.NewParams()}
	from.Params.Add("tag", p.Tag)
	req.AppendHeader(from)
	to := &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: u.User, Host: u.Host}, Params: sip.NewParams()}
	if method == sip.REGISTER {
		to.Address = sip.Uri{Scheme: "sip", User: p.User, Host: p.Domain}
	}
	req.AppendHeader(to)
	cid := sip.CallIDHeader(callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: p.NextCSeq(), MethodName: method})
	var cu sip.Uri
	_ = sip.ParseUri(p.Contact(), &cu)
	req.AppendHeader(&sip.ContactHeader{Address: cu})
	req.AppendHeader(sip.NewHeader("User-Agent", "siptest"))
	req.SetBody(nil)
	return req
}

// Authorize answers a 401/407 challenge on req: it returns a copy of req
// with a new branch, the next CSeq and the credentials header, computed
// with the challenge whose algorithm is alg ("" = the first offered).
func (p *Phone) Authorize(req *sip.Request, challenge *sip.Response, alg string) (*sip.Request, error) {
	chName, answerName := "WWW-Authenticate", "Authorization"
	if challenge.StatusCode == 407 {
		chName, answerName = "Proxy-Authenticate", "Proxy-Authorization"
	}
	var chal *digest.Challenge
	for _, h := range challenge.GetHeaders(chName) {
		c, err := digest.ParseChallenge(h.Value())
		if err != nil {
			return nil, err
		}
		if alg == "" || strings.EqualFold(c.Algorithm, alg) {
			chal = c
			break
		}
	}
	if chal == nil {
		return nil, fmt.Errorf("siptest: no %s challenge with algorithm %q", chName, alg)
	}
	cred, err := digest.Digest(chal, digest.Options{
		Method: string(req.Method), URI: req.Recipient.String(),
		Username: p.User, Password: p.Password, Count: 1,
	})
	if err != nil {
		return nil, err
	}
	out := req.Clone()
	out.Via().Params.Add("branch", sip.GenerateBranch())
	out.CSeq().SeqNo = p.NextCSeq()
	out.RemoveHeader(answerName)
	out.AppendHeader(sip.NewHeader(answerName, cred.String()))
	return out, nil
}

// Register registers the phone for expires seconds, answering the digest
// challenge with algorithm alg, and returns the final response.
func (p *Phone) Register(expires int, alg string) (*sip.Response, error) {
	req := p.NewRequest(sip.REGISTER, "sip:"+p.Domain, "reg-"+p.Tag)
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	if err := p.Send(req); err != nil {
		return nil, err
	}
	res, err := p.Response(sip.REGISTER, 3*time.Second)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != 401 {
		return res, nil
	}
	auth, err := p.Authorize(req, res, alg)
	if err != nil {
		return nil, err
	}
	if err := p.Send(auth); err != nil {
		return nil, err
	}
	return p.Response(sip.REGISTER, 3*time.Second)
}

// Reply answers a request the phone received, as a UAS: the To tag is the
// phone's own tag, and dialog-creating responses carry its Contact.
func (p *Phone) Reply(req *sip.Request, code int, reason string) *sip.Response {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	res.SetDestination(req.Source())
	if to := res.To(); to != nil && code > 100 {
		to.Params.Remove("tag")
		to.Params.Add("tag", p.Tag)
	}
	if code > 100 && code < 300 && req.Method == sip.INVITE {
		var cu sip.Uri
		_ = sip.ParseUri(p.Contact(), &cu)
		res.AppendHeader(&sip.ContactHeader{Address: cu})
	}
	res.SetBody(nil)
	return res
}

// InDialog builds a request inside the dialog established by an INVITE
// and its 2xx, as the caller (asCaller) or the callee would: Route set
// from Record-Route, Request-URI from the remote Contact.
func (p *Phone) InDialog(method sip.RequestMethod, invite *sip.Request, ok *sip.Response, asCaller bool, cseq uint32) *sip.Request {
	var target sip.Uri
	var routes []sip.Uri
	rrs := ok.GetHeaders("Record-Route")
	if asCaller {
		target = ok.Contact().Address
		for i := len(rrs) - 1; i >= 0; i-- {
			routes = append(routes, rrs[i].(*sip.RecordRouteHeader).Address)
		}
	} else {
		target = invite.Contact().Address
		for _, h := range invite.GetHeaders("Record-Route") {
			routes = append(routes, h.(*sip.RecordRouteHeader).Address)
		}
	}
	req := sip.NewRequest(method, *target.Clone())
	host, pn := p.sentBy()
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: strings.ToUpper(p.Transport), Host: host, Port: pn, Params: sip.NewParams()}
	via.Params.Add("branch", sip.GenerateBranch())
	via.Params.Add("rport", "")
	req.AppendHeader(via)
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	for _, r := range routes {
		req.AppendHeader(&sip.RouteHeader{Address: *r.Clone()})
	}
	if asCaller {
		req.AppendHeader(sip.HeaderClone(invite.From()))
		req.AppendHeader(sip.HeaderClone(ok.To()))
	} else {
		// The callee's From is the dialog's To, and the other way round.
		f := ok.To()
		t := invite.From()
		req.AppendHeader(&sip.FromHeader{DisplayName: f.DisplayName, Address: f.Address, Params: f.Params.Clone()})
		req.AppendHeader(&sip.ToHeader{DisplayName: t.DisplayName, Address: t.Address, Params: t.Params.Clone()})
	}
	req.AppendHeader(sip.HeaderClone(invite.CallID()))
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: method})
	var cu sip.Uri
	_ = sip.ParseUri(p.Contact(), &cu)
	if method == sip.INVITE || method == sip.UPDATE {
		req.AppendHeader(&sip.ContactHeader{Address: cu})
	}
	req.SetBody(nil)
	return req
}
