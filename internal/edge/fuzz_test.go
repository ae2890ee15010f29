package edge

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/routr-go/routr/internal/auth"
	"github.com/routr-go/routr/internal/calls"
	"github.com/routr-go/routr/internal/location"
	"github.com/routr-go/routr/internal/resources"
)

// fakeTx is a server transaction that records responses instead of
// sending them.
type fakeTx struct {
	mu   sync.Mutex
	res  []*sip.Response
	done chan struct{}
	once sync.Once
	term []sip.FnTxTerminate
}

func newFakeTx() *fakeTx { return &fakeTx{done: make(chan struct{})} }

// Terminate ends the transaction as sipgo's do: callbacks, then done.
func (f *fakeTx) Terminate() {
	f.once.Do(func() {
		f.mu.Lock()
		term := f.term
		f.mu.Unlock()
		for _, fn := range term {
			fn("", sip.ErrTransactionTerminated)
		}
		close(f.done)
	})
}

func (f *fakeTx) OnTerminate(fn sip.FnTxTerminate) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.done:
		return false
	default:
	}
	f.term = append(f.term, fn)
	return true
}
func (f *fakeTx) Done() <-chan struct{}        { return f.done }
func (f *fakeTx) Err() error                   { return nil }
func (f *fakeTx) Acks() <-chan *sip.Request    { return nil }
func (f *fakeTx) OnCancel(sip.FnTxCancel) bool { return true }
func (f *fakeTx) Respond(r *sip.Response) error {
	f.mu.Lock()
	f.res = append(f.res, r)
	f.mu.Unlock()
	return nil
}

func fuzzServer(tb testing.TB) *Server {
	tb.Helper()
	set, err := resources.LoadDir("../../config/resources")
	if err != nil {
		tb.Fatal(err)
	}
	dg, err := auth.New(auth.Config{Algorithms: []string{"MD5", "SHA-256"}})
	if err != nil {
		tb.Fatal(err)
	}
	s, err := New(Options{
		Listeners:  []Listener{{Protocol: "udp", Addr: "127.0.0.1:0"}},
		Registrar:  RegistrarOptions{MinExpires: time.Minute, MaxExpires: time.Hour, DefaultExpires: time.Hour},
		Resources:  resources.NewHolder(set),
		Auth:       dg,
		Location:   location.NewMemory(location.MemoryOptions{MaxBindings: 100}),
		Calls:      calls.NewTracker(calls.Options{}),
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		tb.Fatal(err)
	}
	// Never Run, but what it forwards opens sockets with readers.
	tb.Cleanup(func() { s.client.Close(); s.ua.Close() })
	return s
}

// FuzzHandleRequest feeds arbitrary bytes through sipgo's parser and, when
// they parse as a request, through the edge's whole handler chain. Nothing
// may panic, and every request other than ACK that the edge answers itself
// gets exactly one final response.
func FuzzHandleRequest(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/fuzz-seeds/*.sip")
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"))
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := sip.ParseMessage(data)
		if err != nil {
			return
		}
		req, ok := msg.(*sip.Request)
		if !ok {
			return
		}
		req.SetSource("127.0.0.1:5070")
		req.SetTransport("UDP")
		tx := newFakeTx()
		defer tx.Terminate()
		s.serve(req, tx)
		if req.Method == sip.ACK || req.Method == sip.INVITE {
			return
		}
		tx.mu.Lock()
		defer tx.mu.Unlock()
		finals := 0
		for _, r := range tx.res {
			if r.StatusCode >= 200 {
				finals++
			}
		}
		if finals > 1 {
			t.Fatalf("%d final responses to %s", finals, req.Method)
		}
	})
}
