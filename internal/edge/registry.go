package edge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/routr-go/routr/internal/resources"
	"github.com/routr-go/routr/internal/routing"
)

// Registry timing. Routr asks for 600 s; we refresh when four fifths of
// what the provider granted has passed, and after a failure wait
// registryBackoff, doubled at each further failure up to registryMaxBackoff.
const (
	registryExpires    = 600
	registryTick       = 250 * time.Millisecond
	registryBackoff    = 5 * time.Second
	registryMaxBackoff = 5 * time.Minute
	registryWait       = 10 * time.Second
)

// trunkRegistration is what the registry knows of one trunk.
type trunkRegistration struct {
	callID     string
	cseq       uint32
	tag        string
	due        time.Time
	failures   int
	registered bool
	busy       bool
}

type registryResult struct {
	ref     string
	granted time.Duration
	err     error
}

// RunRegistry keeps every trunk with outbound.sendRegister registered with
// its provider (Routr's registry service): REGISTER to the trunk's first
// outbound URI, the provider's digest challenge answered with the trunk's
// outbound credentials, refreshed before expiry, retried with backoff on
// failure. Trunks added or removed at run time are picked up. The state of
// each trunk is in routr_registry_trunk_registered and in the log. It
// returns when ctx ends.
func (s *Server) RunRegistry(ctx context.Context) {
	gauge := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "routr", Subsystem: "registry", Name: "trunk_registered",
		Help: "1 when a trunk with sendRegister is registered with its provider, else 0.",
	}, []string{"trunk"})
	if err := s.opts.Registerer.Register(gauge); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			gauge = are.ExistingCollector.(*prometheus.GaugeVec)
		}
	}
	select {
	case <-s.Ready():
	case <-ctx.Done():
		return
	}
	states := map[string]*trunkRegistration{}
	results := make(chan registryResult)
	tick := time.NewTicker(registryTick)
	defer tick.Stop()
	for {
		now := time.Now()
		live := map[string]bool{}
		for _, t := range s.opts.Resources.Load().Trunks() {
			if !t.SendRegister {
				continue
			}
			live[t.Ref] = true
			st := states[t.Ref]
			if st == nil {
				st = &trunkRegistration{callID: sip.GenerateTagN(16), tag: sip.GenerateTagN(10)}
				states[t.Ref] = st
				gauge.WithLabelValues(t.Ref).Set(0)
			}
			if st.busy || now.Before(st.due) {
				continue
			}
			st.busy = true
			st.cseq += 2
			go func(t *resources.Trunk, st trunkRegistration) {
				granted, err := s.registerTrunk(ctx, t, st)
				select {
				case results <- registryResult{t.Ref, granted, err}:
				case <-ctx.Done():
				}
			}(t, *st)
		}
		for ref, st := range states {
			if !live[ref] && !st.busy {
				delete(states, ref)
				gauge.DeleteLabelValues(ref)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case res := <-results:
			st := states[res.ref]
			if st == nil {
				continue
			}
			st.busy = false
			if res.err != nil {
				backoff := registryBackoff << min(st.failures, 10)
				backoff = min(backoff, registryMaxBackoff)
				st.failures++
				st.due = time.Now().Add(backoff)
				if st.registered || st.failures == 1 {
					s.log.Warn("trunk registration failed", "trunk", res.ref, "error", res.err, "retry_in", backoff)
				}
				st.registered = false
				gauge.WithLabelValues(res.ref).Set(0)
				continue
			}
			if !st.registered {
				s.log.Info("trunk registered", "trunk", res.ref, "expires", res.granted)
			}
			st.failures, st.registered = 0, true
			st.due = time.Now().Add(res.granted * 4 / 5)
			gauge.WithLabelValues(res.ref).Set(1)
		}
	}
}

// registerTrunk sends one REGISTER for t (and its answer to a challenge)
// and returns the expiry the provider granted.
func (s *Server) registerTrunk(ctx context.Context, t *resources.Trunk, st trunkRegistration) (time.Duration, error) {
	hops := routing.Hops(t, "", 0)
	if len(hops) == 0 {
		return 0, errors.New("no enabled outbound URI")
	}
	hop := hops[0]
	user := hop.User
	if user == "" && t.OutboundCredentials != nil {
		user = t.OutboundCredentials.Username
	}
	dest := net.JoinHostPort(strings.Trim(hop.Host, "[]"), strconv.Itoa(hop.Port))
	peer := addrOf(dest)
	host, port := s.addrs.hostPort(hop.Transport, peer)

	ruri := sip.Uri{Scheme: "sip", Host: hop.Host, Port: hop.Port, UriParams: sip.NewParams()}
	if hop.Transport != "udp" {
		ruri.UriParams.Add("transport", hop.Transport)
	}
	req := sip.NewRequest(sip.REGISTER, ruri)
	req.AppendHeader(s.via(hop.Transport, peer, sip.GenerateBranch()))
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	aor := sip.Uri{Scheme: "sip", User: user, Host: hop.Host}
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", st.tag)
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor, Params: sip.NewParams()})
	cid := sip.CallIDHeader(st.callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: st.cseq, MethodName: sip.REGISTER})
	contact := sip.Uri{Scheme: "sip", User: user, Host: host, Port: port, UriParams: sip.NewParams()}
	if hop.Transport != "udp" {
		contact.UriParams.Add("transport", hop.Transport)
	}
	req.AppendHeader(&sip.ContactHeader{Address: contact})
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(registryExpires)))
	req.AppendHeader(sip.NewHeader("User-Agent", s.opts.UserAgent))
	req.SetBody(nil)
	req.SetTransport(upperTransport(hop.Transport))
	req.SetDestination(dest)
	s.fromListener(req)

	res, err := s.registerOnce(ctx, req)
	if err != nil {
		return 0, err
	}
	if res.StatusCode == 401 || res.StatusCode == 407 {
		if t.OutboundCredentials == nil {
			return 0, fmt.Errorf("challenged (%d) and the trunk has no outbound credentials", res.StatusCode)
		}
		areq, err := answerChallenge(req, res, t.OutboundCredentials)
		if err != nil {
			return 0, err
		}
		areq.CSeq().SeqNo++
		areq.Via().Params.Add("branch", sip.GenerateBranch())
		if res, err = s.registerOnce(ctx, areq); err != nil {
			return 0, err
		}
	}
	if !res.IsSuccess() {
		return 0, fmt.Errorf("provider answered %d %s", res.StatusCode, res.Reason)
	}
	return grantedExpiry(res, contact), nil
}

// registerOnce sends a REGISTER and waits for its final response.
func (s *Server) registerOnce(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	ctx, cancel := context.WithTimeout(withDNS(ctx), registryWait)
	defer cancel()
	tx, err := s.client.TransactionRequest(ctx, req, asIs)
	if err != nil && req.Laddr.Port != 0 {
		// Our listener is bound but not serving yet: leave from a
		// socket of sipgo's choosing this time.
		req.Laddr = sip.Addr{}
		tx, err = s.client.TransactionRequest(ctx, req, asIs)
	}
	if err != nil {
		return nil, err
	}
	for {
		select {
		case res := <-tx.Responses():
			if res.StatusCode >= 200 {
				return res, nil
			}
		case <-tx.Done():
			if err := tx.Err(); err != nil {
				return nil, err
			}
			return nil, errors.New("transaction ended without a response")
		case <-ctx.Done():
			tx.Terminate()
			return nil, ctx.Err()
		}
	}
}

// answerChallenge returns a copy of req carrying the digest answer to the
// challenge in res, computed with cred. The password never leaves the
// edge: only the digest does.
func answerChallenge(req *sip.Request, res *sip.Response, cred *resources.Credentials) (*sip.Request, error) {
	chName, answerName := "WWW-Authenticate", "Authorization"
	if res.StatusCode == 407 {
		chName, answerName = "Proxy-Authenticate", "Proxy-Authorization"
	}
	var chal *digest.Challenge
	for _, hdr := range res.GetHeaders(chName) {
		c, err := digest.ParseChallenge(hdr.Value())
		if err != nil {
			continue
		}
		if chal == nil || strings.EqualFold(c.Algorithm, "SHA-256") {
			chal = c
		}
	}
	if chal == nil {
		return nil, errNoChallenge
	}
	answer, err := digest.Digest(chal, digest.Options{
		Method: string(req.Method), URI: req.Recipient.String(),
		Username: cred.Username, Password: cred.Password, Count: 1,
	})
	if err != nil {
		return nil, err
	}
	out := req.Clone()
	out.RemoveHeader(answerName)
	out.AppendHeader(sip.NewHeader(answerName, answer.String()))
	return out, nil
}

// grantedExpiry is the expiry a 2xx to our REGISTER grants: our
// Contact's expires parameter, else the Expires header, else what we
// asked for.
func grantedExpiry(res *sip.Response, ours sip.Uri) time.Duration {
	secs := registryExpires
	if h := res.GetHeader("Expires"); h != nil {
		if v, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil {
			secs = v
		}
	}
	for _, h := range res.GetHeaders("Contact") {
		c, ok := h.(*sip.ContactHeader)
		if !ok || c.Address.Host != ours.Host || c.Address.Port != ours.Port {
			continue
		}
		if v, ok := c.Params.Get("expires"); ok {
			if n, err := strconv.Atoi(v); err == nil {
				secs = n
			}
		}
	}
	return time.Duration(max(secs, 1)) * time.Second
}
