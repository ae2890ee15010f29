package edge

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/routr-go/routr/internal/connect"
	"github.com/routr-go/routr/internal/events"
	"github.com/routr-go/routr/internal/location"
	"github.com/routr-go/routr/internal/resources"
	"github.com/routr-go/routr/internal/routing"
)

// register is the registrar (RFC 3261 section 10.3): it authenticates the
// agent of the To AOR and stores, refreshes or removes its bindings.
func (s *Server) register(r *Request) {
	if token := r.headerValue(connect.Header); token != "" && firstHeader(r, "authorization") == nil {
		s.registerConnect(r, token)
		return
	}
	to := r.To()
	set := s.opts.Resources.Load()
	d := set.DomainByURI(to.Address.Host)
	var agent *resources.Agent
	if d != nil {
		agent = set.Agent(d.Ref, to.Address.User)
	}
	if agent == nil {
		if p := set.PeerByUsername(to.Address.User); p != nil {
			s.registerPeer(r, to.Address.Host, p)
			return
		}
	}
	if d == nil {
		// Challenge like any unknown user: a scanner learns nothing
		// from the domain part either.
		d = unknownDomain(to.Address.Host)
	}
	if d.ACL != nil && !d.ACL.Allows(r.Src.Addr()) {
		s.registrations("rejected")
		s.reply(r, 403, "Forbidden")
		return
	}
	if !s.authenticate(r, registrarAuth, d, agent) {
		return
	}
	s.storeBindings(r, routing.AOR(agent.Username, d.DomainURI), agent.MaxContacts)
}

// storeBindings carries out an authenticated REGISTER for aor: it stores,
// refreshes or removes the bindings its Contacts name and answers with
// the bindings aor then has.
func (s *Server) storeBindings(r *Request, aor string, maxContacts int) {
	contacts, wildcard, bad := parseContacts(r)
	if bad != "" {
		s.registrations("rejected")
		s.reply(r, 400, bad)
		return
	}
	ctx := context.Background()
	now := time.Now()
	headerExpires := -1
	if h := firstHeader(r, "expires"); h != nil {
		if v, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && v >= 0 {
			headerExpires = v
		}
	}

	if wildcard {
		if headerExpires != 0 || len(contacts) > 0 {
			s.registrations("rejected")
			s.reply(r, 400, "Bad Request (Contact: * needs Expires: 0)")
			return
		}
		if n, err := s.opts.Location.RemoveAll(ctx, aor); err != nil {
			s.log.Error("registrar remove all", "aor", aor, "error", err)
			s.reply(r, 500, "Server Internal Error")
			return
		} else if n > 0 {
			s.unregistered(aor, now)
		}
		s.registrations("removed")
		s.replyBindings(r, aor)
		return
	}

	callID := r.CallID()
	cseq := r.CSeq().SeqNo
	granted := -1
	for _, c := range contacts {
		exp := headerExpires
		if v, ok := c.Params.Get("expires"); ok {
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				exp = n
			}
		}
		contact := c.Address.String()
		if exp == 0 {
			if ok, err := s.opts.Location.Remove(ctx, aor, contact); err != nil {
				s.log.Error("registrar remove", "aor", aor, "error", err)
			} else if ok {
				s.unregistered(aor, now)
			}
			s.registrations("removed")
			continue
		}
		secs := s.clampExpires(exp)
		if err := s.enforceMaxContacts(ctx, aor, contact, maxContacts); err != nil {
			s.log.Error("registrar max contacts", "aor", aor, "error", err)
		}
		b := location.Binding{
			AOR:          aor,
			Contact:      contact,
			Transport:    r.Transport(),
			Source:       r.Src.String(),
			LocalAddr:    r.Request.Destination(),
			CallID:       callID,
			CSeq:         cseq,
			Expires:      now.Add(time.Duration(secs) * time.Second),
			RegisteredAt: now,
			Instance:     s.opts.Cluster.Self,
		}
		if ua := firstHeader(r, "user-agent"); ua != nil {
			b.UserAgent = ua.Value()
		}
		if sc := firstHeader(r, routing.HeaderSessionCount); sc != nil {
			b.SessionCount, _ = strconv.Atoi(strings.TrimSpace(sc.Value()))
		}
		res, err := s.opts.Location.Put(ctx, b)
		switch {
		case errors.Is(err, location.ErrOutOfOrder):
			// A retransmission or a stale request: the bindings stay
			// as they are and the answer lists them.
			continue
		case errors.Is(err, location.ErrFull):
			s.registrations("rejected")
			s.reply(r, 503, "Service Unavailable", sip.NewHeader("Retry-After", "60"))
			return
		case err != nil:
			// A shared store out of reach (NATS away): the phone
			// tries again later, or another edge.
			s.log.Error("registrar put", "aor", aor, "error", err)
			s.reply(r, 503, "Service Unavailable", sip.NewHeader("Retry-After", "5"))
			return
		}
		if res == location.Refreshed {
			s.registrations("refreshed")
		} else {
			s.registrations("stored")
		}
		granted = secs
	}
	if granted > 0 && s.opts.Events != nil {
		s.opts.Events.Publish(events.EndpointRegistered(aor, granted, xHeaders(r.Request), now))
	}
	s.replyBindings(r, aor)
}

func (s *Server) registrations(outcome string) {
	s.metrics.registrationOutcome(outcome).Inc()
}

func (s *Server) unregistered(aor string, at time.Time) {
	if s.opts.Events != nil {
		s.opts.Events.Publish(events.EndpointUnregistered(aor, "unregister", at))
	}
}

// unknownDomain stands in for a domain that does not exist, so that it is
// challenged exactly like a real one.
func unknownDomain(host string) *resources.Domain {
	return &resources.Domain{DomainURI: host}
}

// clampExpires bounds the expiry a client asked for (RFC 3261 10.3 step 7
// lets the registrar shorten it; we also lengthen one that is too brief
// rather than answering 423, which many phones handle badly).
func (s *Server) clampExpires(asked int) int {
	o := s.opts.Registrar
	d := time.Duration(asked) * time.Second
	if asked < 0 {
		d = o.DefaultExpires
	}
	if o.MaxExpires > 0 && d > o.MaxExpires {
		d = o.MaxExpires
	}
	if d < o.MinExpires {
		d = o.MinExpires
	}
	return int(d / time.Second)
}

// enforceMaxContacts makes room for contact when the AOR already holds
// max bindings: the oldest binding goes. A phone that rebooted onto a new
// port then replaces its own stale binding instead of being locked out.
func (s *Server) enforceMaxContacts(ctx context.Context, aor, contact string, max int) error {
	if max <= 0 {
		return nil
	}
	// Count copies nothing: most REGISTERs refresh an AOR below its
	// bound, and the reply looks the bindings up once more anyway.
	if n, err := s.opts.Location.Count(ctx, aor); err == nil && n < max {
		return nil
	}
	bs, err := s.opts.Location.Lookup(ctx, aor)
	if err != nil {
		return err
	}
	if len(bs) < max {
		return nil
	}
	for _, b := range bs {
		if b.Contact == contact {
			return nil // a refresh needs no room
		}
	}
	for len(bs) >= max {
		oldest := bs[len(bs)-1]
		if _, err := s.opts.Location.Remove(ctx, aor, oldest.Contact); err != nil {
			return err
		}
		bs = bs[:len(bs)-1]
	}
	return nil
}

// replyBindings answers 200 listing every current binding of aor with the
// time it has left, as RFC 3261 10.3 step 8 asks.
func (s *Server) replyBindings(r *Request, aor string) {
	bs, err := s.opts.Location.Lookup(context.Background(), aor)
	if err != nil {
		s.log.Error("registrar lookup", "aor", aor, "error", err)
	}
	now := time.Now()
	hdrs := make([]sip.Header, 0, len(bs)+1)
	for _, b := range bs {
		var u sip.Uri
		if err := sip.ParseUri(b.Contact, &u); err != nil {
			continue
		}
		left := int(b.Expires.Sub(now).Round(time.Second) / time.Second)
		if left < 0 {
			left = 0
		}
		c := &sip.ContactHeader{Address: u, Params: sip.NewParams()}
		c.Params.Add("expires", strconv.Itoa(left))
		hdrs = append(hdrs, c)
	}
	hdrs = append(hdrs, sip.NewHeader("Date", now.UTC().Format(time.RFC1123)))
	s.reply(r, 200, "OK", hdrs...)
}

// parseContacts returns the Contact values of a REGISTER, whether one of
// them is "*", and a reason when they cannot be used.
func parseContacts(r *Request) (cs []*sip.ContactHeader, wildcard bool, bad string) {
	for _, h := range r.Headers() {
		if !strings.EqualFold(h.Name(), "Contact") {
			continue
		}
		c, ok := h.(*sip.ContactHeader)
		if !ok {
			return nil, false, "Bad Request (Contact)"
		}
		if c.Address.Wildcard {
			wildcard = true
			continue
		}
		if c.Address.Host == "" {
			return nil, false, "Bad Request (Contact)"
		}
		cs = append(cs, c)
	}
	if wildcard && len(cs) > 0 {
		return nil, false, "Bad Request (Contact: * with other contacts)"
	}
	return cs, wildcard, ""
}

// xHeaders returns the X- headers of a message as events carry them.
func xHeaders(m interface{ Headers() []sip.Header }) []events.Header {
	var out []events.Header
	for _, h := range m.Headers() {
		if n := h.Name(); events.HasXPrefix(n) {
			out = append(out, events.Header{Name: n, Value: h.Value()})
		}
	}
	return out
}
