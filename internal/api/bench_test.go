package api

import (
	"context"
	"strconv"
	"testing"

	"connectrpc.com/connect"

	"github.com/routr-go/routr/internal/apipb/agentspb"
	"github.com/routr-go/routr/internal/apipb/agentspb/agentspbconnect"
	"github.com/routr-go/routr/internal/apipb/credentialspb"
	"github.com/routr-go/routr/internal/apipb/credentialspb/credentialspbconnect"
	"github.com/routr-go/routr/internal/apipb/domainspb"
	"github.com/routr-go/routr/internal/apipb/domainspb/domainspbconnect"
)

// BenchmarkGetAgent is the read path over gRPC: key check, one agent
// with its domain and credentials resolved, on the embedded store.
func BenchmarkGetAgent(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	o := f.opts(connect.WithGRPC())
	cr := credentialspbconnect.NewCredentialsServiceClient(f.srv.Client(), f.srv.URL, o...)
	dm := domainspbconnect.NewDomainsClient(f.srv.Client(), f.srv.URL, o...)
	ag := agentspbconnect.NewAgentsClient(f.srv.Client(), f.srv.URL, o...)
	c, err := cr.Create(ctx, connect.NewRequest(&credentialspb.CreateCredentialsRequest{Name: "c", Username: "u", Password: "p"}))
	if err != nil {
		b.Fatal(err)
	}
	d, err := dm.Create(ctx, connect.NewRequest(&domainspb.CreateDomainRequest{Name: "d", DomainUri: "bench.test"}))
	if err != nil {
		b.Fatal(err)
	}
	a, err := ag.Create(ctx, connect.NewRequest(&agentspb.CreateAgentRequest{Name: "a", Username: "1001", DomainRef: d.Msg.Ref, CredentialsRef: c.Msg.Ref}))
	if err != nil {
		b.Fatal(err)
	}
	req := connect.NewRequest(&agentspb.GetAgentRequest{Ref: a.Msg.Ref})
	b.ResetTimer()
	for b.Loop() {
		if _, err := ag.Get(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateCredentials is the write path over gRPC: key check,
// validation of the whole set, an encrypted password, one transaction.
func BenchmarkCreateCredentials(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	cr := credentialspbconnect.NewCredentialsServiceClient(f.srv.Client(), f.srv.URL, f.opts(connect.WithGRPC())...)
	i := 0
	for b.Loop() {
		i++
		if _, err := cr.Create(ctx, connect.NewRequest(&credentialspb.CreateCredentialsRequest{Name: "c", Username: "u" + strconv.Itoa(i), Password: "p"})); err != nil {
			b.Fatal(err)
		}
	}
}
