package edge

import (
	"context"
	"fmt"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/routr-go/routr/internal/auth"
	"github.com/routr-go/routr/internal/resources"
)

const registryResources = `
- {apiVersion: v2beta1, kind: Credentials, ref: cred-out, metadata: {name: o}, spec: {credentials: {username: acct, password: s3cr3t-out}}}
- apiVersion: v2beta1
  kind: Trunk
  ref: trunk-reg
  metadata: {name: Registering}
  spec:
    inbound: {uri: trunkreg.test}
    outbound:
      sendRegister: true
      credentialsRef: cred-out
      uris: [{uri: {user: line-1, host: 127.0.0.1, port: %d}}]
`

// registered reads routr_registry_trunk_registered for trunk.
func registered(t *testing.T, te *testEdge, trunk string) float64 {
	t.Helper()
	mfs, err := te.srv.opts.Registerer.(prometheus.Gatherer).Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "routr_registry_trunk_registered" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "trunk" && l.GetValue() == trunk {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

func TestRegistryRegistersAndRefreshes(t *testing.T) {
	te := startEdge(t)
	provider := te.other(t, "registrar", "provider.test")
	rs, err := resources.Parse("registry.yaml", fmt.Appendf(nil, registryResources, provider.Port()))
	if err != nil {
		t.Fatal(err)
	}
	set, err := resources.Build(rs)
	if err != nil {
		t.Fatal(err)
	}
	te.srv.opts.Resources.Store(set)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { te.srv.RunRegistry(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	digest, err := auth.New(auth.Config{Algorithms: []string{"MD5"}})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := provider.Request(sip.REGISTER, wait)
	if err != nil {
		t.Fatal(err)
	}
	if reg.From().Address.User != "line-1" || reg.To().Address.User != "line-1" || reg.GetHeader("Expires").Value() != "600" {
		t.Fatalf("REGISTER: %s", reg.String())
	}
	ch := provider.Reply(reg, 401, "Unauthorized")
	for _, v := range digest.Challenge("provider.test", false) {
		ch.AppendHeader(sip.NewHeader("WWW-Authenticate", v))
	}
	_ = provider.Send(ch)
	authd, err := provider.Request(sip.REGISTER, wait)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := auth.ParseCredentials(hdr(authd, "Authorization"))
	if err != nil || cred.Username != "acct" || digest.Verify(cred, "REGISTER", "provider.test", "s3cr3t-out") != auth.OK {
		t.Fatalf("the provider cannot verify %q (%v)", hdr(authd, "Authorization"), err)
	}
	if authd.CSeq().SeqNo <= reg.CSeq().SeqNo || authd.CallID().Value() != reg.CallID().Value() {
		t.Fatal("the answer to the challenge must keep the Call-ID and raise the CSeq")
	}
	ok := provider.Reply(authd, 200, "OK")
	ok.AppendHeader(sip.NewHeader("Expires", "1"))
	_ = provider.Send(ok)
	waitFor(t, "trunk registered", func() bool { return registered(t, te, "trunk-reg") == 1 })

	// Granted 1 s: the refresh comes within it.
	refresh, err := provider.Request(sip.REGISTER, wait)
	if err != nil {
		t.Fatal(err)
	}
	if refresh.CallID().Value() != reg.CallID().Value() || refresh.CSeq().SeqNo <= authd.CSeq().SeqNo {
		t.Fatal("a refresh must keep the Call-ID and raise the CSeq")
	}
	_ = provider.Send(provider.Reply(refresh, 403, "Forbidden"))
	waitFor(t, "trunk unregistered", func() bool { return registered(t, te, "trunk-reg") == 0 })
}
