package edge

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/golang-jwt/jwt/v5"

	"github.com/routr-go/routr/internal/connect"
	"github.com/routr-go/routr/internal/events"
)

func TestConnectToken(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	v, err := connect.NewVerifier(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), connect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	token := func(methods ...string) string {
		c := connect.Claims{
			RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))},
			Ref:              "eph-1", Domain: "sip.local", DomainRef: "domain-01",
			AOR: "sip:eph-1@sip.local", AORLink: "backend:voice", MaxContacts: 1, AllowedMethods: methods,
		}
		s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	re := withRoutingResources(t, startEdgeWith(t, nil, func(o *Options) { o.ConnectVerifier = v }))
	voice := registerPeer(t, re)
	eph := re.other(t, "anonymous", "sip.local")

	// REGISTER: no challenge, binding under the token's aor.
	reg := eph.NewRequest(sip.REGISTER, "sip:sip.local", "eph-reg")
	reg.AppendHeader(sip.NewHeader("Expires", "300"))
	reg.AppendHeader(sip.NewHeader(connect.Header, token("REGISTER", "INVITE")))
	_ = eph.Send(reg)
	if res, err := eph.Response(sip.REGISTER, wait); err != nil || res.StatusCode != 200 {
		t.Fatalf("REGISTER with a token: %v %v", res, err)
	}
	if bs, _ := re.loc.Lookup(context.Background(), "sip:eph-1@sip.local"); len(bs) != 1 {
		t.Fatalf("bindings under the token's aor: %+v", bs)
	}

	// INVITE: to the peer of the token's aorLink, token not forwarded.
	inv := eph.NewRequest(sip.INVITE, "sip:agent@sip.local", "eph-call")
	inv.AppendHeader(sip.NewHeader(connect.Header, token("INVITE")))
	_ = eph.Send(inv)
	got, err := voice.Request(sip.INVITE, wait)
	if err != nil {
		t.Fatal(err)
	}
	if got.GetHeader(connect.Header) != nil || hdr(got, "X-Call-Direction") != "agent-to-peer" {
		t.Fatalf("INVITE at the peer: %s", got.String())
	}
	_ = voice.Send(voice.Reply(got, 486, "Busy Here"))
	if r, err := eph.Response(sip.INVITE, wait); err != nil || r.StatusCode != 486 {
		t.Fatalf("caller got %v %v", r, err)
	}
	re.wantEvents(t, "eph-call", events.TypeCallStarted, events.TypeCallEnded)
	for _, e := range re.rec.evs {
		if strings.Contains(string(e.Body), "Connect-Token") {
			t.Fatalf("an event carries the token: %s", e.Body)
		}
	}

	// Refusals: a method the token does not allow, a forged token.
	for name, tok := range map[string]string{"register-only token": token("REGISTER"), "forged": token("INVITE") + "x"} {
		inv := eph.NewRequest(sip.INVITE, "sip:agent@sip.local", "eph-"+name)
		inv.AppendHeader(sip.NewHeader(connect.Header, tok))
		_ = eph.Send(inv)
		if r, err := eph.Response(sip.INVITE, wait); err != nil || r.StatusCode != 403 {
			t.Fatalf("%s: %v %v, want 403", name, r, err)
		}
	}
}

func TestConnectTokenWithoutVerifier(t *testing.T) {
	re := startRoutingEdge(t)
	p := re.other(t, "anonymous", "sip.local")
	inv := p.NewRequest(sip.INVITE, "sip:1001@sip.local", "eph-noverifier")
	inv.AppendHeader(sip.NewHeader(connect.Header, "a.b.c"))
	_ = p.Send(inv)
	if r, err := p.Response(sip.INVITE, wait); err != nil || r.StatusCode != 500 {
		t.Fatalf("token without a verifier: %v %v, want 500 as in Routr", r, err)
	}
}
