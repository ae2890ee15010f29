package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/routr-go/routr/internal/siptest"
)

// Sources on loopback: the flood, the half-open connections, and the
// legitimate agents each come from an address of their own (not
// 127.0.0.1, which the shipped trunk's outbound URI makes a trusted
// source, exempt from the guard).
const (
	floodSource    = "127.0.0.4"
	halfOpenSource = "127.0.0.3"
	agentSource    = "127.0.0.2"
)

// peakSampler polls the edge's /metrics and keeps the highest goroutines
// and resident memory it sees.
type peakSampler struct {
	httpAddr string
	stop     chan struct{}
	done     chan struct{}

	mu                  sync.Mutex
	goroutines, rss     float64
	connections, polled int
}

func samplePeaks(httpAddr string, every time.Duration) *peakSampler {
	p := &peakSampler{httpAddr: httpAddr, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			if m, err := scrape(p.httpAddr); err == nil {
				p.mu.Lock()
				p.goroutines = max(p.goroutines, m["go_goroutines"])
				p.rss = max(p.rss, m["process_resident_memory_bytes"])
				p.connections = max(p.connections, int(m["routr_sip_connections_open"]))
				p.polled++
				p.mu.Unlock()
			}
			select {
			case <-p.stop:
				return
			case <-time.After(every):
			}
		}
	}()
	return p
}

func (p *peakSampler) finish() (goroutines, rss float64, connections, polled int) {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.goroutines, p.rss, p.connections, p.polled
}

// scrape reads the unlabelled samples of /metrics (and labelled ones by
// their full series name).
func scrape(httpAddr string) (map[string]float64, error) {
	c := http.Client{Timeout: 5 * time.Second}
	res, err := c.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.LastIndexByte(line, ' '); i > 0 && line[0] != '#' {
			if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
				out[line[:i]] = v
			}
		}
	}
	return out, sc.Err()
}

// floodRate is the INVITEs per second of the flood: 15 times the guard's
// default rate, and about what the race-detector binary reads on a busy
// 2-core machine (flooding faster only fills the kernel's socket buffer,
// which then drops everyone's datagrams alike, legitimate ones included).
const floodRate = 3000

// inviteFlood sends INVITEs with unique Call-IDs from floodSource to the
// edge at floodRate until stop, never ACKing what comes back (each final
// response is retransmitted until Timer H). It counts what it sent and
// what it got.
type inviteFlood struct {
	sent, answers atomic.Int64
	stop          chan struct{}
	done          sync.WaitGroup
}

func startInviteFlood(t *testing.T, edgeAddr string) *inviteFlood {
	t.Helper()
	conn, err := net.ListenPacket("udp", floodSource+":0")
	if err != nil {
		t.Fatal(err)
	}
	dst, err := net.ResolveUDPAddr("udp", edgeAddr)
	if err != nil {
		t.Fatal(err)
	}
	f := &inviteFlood{stop: make(chan struct{})}
	local := conn.LocalAddr().String()
	f.done.Go(func() {
		buf := make([]byte, 65536)
		for {
			if _, _, err := conn.ReadFrom(buf); err != nil {
				return
			}
			f.answers.Add(1)
		}
	})
	f.done.Go(func() {
		defer conn.Close()
		for i := 0; ; i++ {
			select {
			case <-f.stop:
				return
			default:
			}
			user := "1001" // a known agent: 407
			if i%2 == 1 {
				user = "flood" + strconv.Itoa(i) // unknown: 403
			}
			msg := "INVITE sip:1002@sip.local SIP/2.0\r\n" +
				"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK-flood-" + strconv.Itoa(i) + ";rport\r\n" +
				"Max-Forwards: 70\r\n" +
				"From: <sip:" + user + "@sip.local>;tag=f" + strconv.Itoa(i) + "\r\n" +
				"To: <sip:1002@sip.local>\r\n" +
				"Call-ID: flood-" + strconv.Itoa(i) + "@" + floodSource + "\r\n" +
				"CSeq: 1 INVITE\r\n" +
				"Contact: <sip:" + user + "@" + local + ">\r\n" +
				"Content-Length: 0\r\n\r\n"
			if _, err := conn.WriteTo([]byte(msg), dst); err == nil {
				f.sent.Add(1)
			}
			if i%(floodRate/100) == floodRate/100-1 {
				time.Sleep(10 * time.Millisecond)
			}
		}
	})
	return f
}

func (f *inviteFlood) end() {
	close(f.stop)
	f.done.Wait()
}

// openHalfOpen opens n connections to addr from halfOpenSource that send
// partial (a request line, or the start of a WebSocket handshake) or
// nothing at all, and then nothing more.
func openHalfOpen(t *testing.T, addr string, n int, partial string) []net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(halfOpenSource)}, Timeout: 5 * time.Second}
	var out []net.Conn
	for range n {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("half-open connection %d to %s: %v", len(out), addr, err)
		}
		if partial != "" {
			if _, err := c.Write([]byte(partial)); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, c)
	}
	return out
}

// TestFloodBounded floods the binary, with the guard applied to loopback
// as it is to any other address, from one source with INVITEs that have
// unique Call-IDs and are never ACKed, and from another with half-open TCP
// and WebSocket connections (silent, or stopped mid-message or
// mid-handshake). Meanwhile an agent on a third address registers (UDP
// and TCP) and calls. Goroutines and memory stay within generous bounds
// (no timing is asserted), the flooding source is banned, the edge closes
// every half-open connection itself, and once the flood is over it comes
// back to where it started.
func TestFloodBounded(t *testing.T) {
	t.Parallel()
	for _, a := range []string{agentSource, halfOpenSource, floodSource} {
		if c, err := net.ListenPacket("udp", a+":0"); err != nil {
			t.Skipf("no loopback address %s: %v", a, err)
		} else {
			c.Close()
		}
	}
	ns := newTestNATS(t, "")
	ns.start(true)
	sub := subscribe(t, ns.url())
	sipPort, wsPort := freePort(t), freePort(t)
	cfg := filepath.Join(t.TempDir(), "edgeport.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`spec:
  bindAddr: 127.0.0.1
  transport:
    - {protocol: udp, port: %d}
    - {protocol: tcp, port: %d}
    - {protocol: ws, port: %d}
`, sipPort, sipPort, wsPort)), 0o644); err != nil {
		t.Fatal(err)
	}
	e := startNATSEdge(t, ns.url(), "CONFIG_PATH="+cfg, "GUARD_LIMIT_LOOPBACK=true", "ENABLE_PPROF=true")
	e.sipAddr = fmt.Sprintf("127.0.0.1:%d", sipPort)
	wsAddr := fmt.Sprintf("127.0.0.1:%d", wsPort)

	agent := func(transport, user string) *siptest.Phone {
		p, err := siptest.NewPhoneWith(transport, user, "sip.local", "1234", e.sipAddr, siptest.Options{LocalIP: agentSource})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		return p
	}
	caller, callee := agent("udp", "1001"), agent("udp", "1002")
	if res, err := callee.Register(600, ""); err != nil || res.StatusCode != 200 {
		t.Fatalf("REGISTER before the flood: %v %v", res, err)
	}
	heap0, gor0 := heapAfterGC(t, e)
	m0 := e.metrics(t)
	rss0 := m0["process_resident_memory_bytes"]

	peaks := samplePeaks(e.httpAddr, 100*time.Millisecond)
	flood := startInviteFlood(t, e.sipAddr)
	const halfOpen = 300 // per kind; the race detector allows 8128 goroutines in all
	var held []net.Conn
	held = append(held, openHalfOpen(t, e.sipAddr, halfOpen, "")...)
	held = append(held, openHalfOpen(t, e.sipAddr, halfOpen, "INVITE sip:1002@sip.local SIP/2.0\r\nVia: SIP/2.0/TCP x")...)
	held = append(held, openHalfOpen(t, wsAddr, halfOpen, "")...)
	held = append(held, openHalfOpen(t, wsAddr, halfOpen, "GET / HTTP/1.1\r\nHost: edge\r\nUpgrade: websocket\r\n")...)
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()

	// The legitimate agent, during the flood.
	for flood.sent.Load() < 2*floodRate {
		time.Sleep(10 * time.Millisecond)
	}
	if res, err := callee.Register(600, ""); err != nil || res.StatusCode != 200 {
		t.Fatalf("REGISTER during the flood: %v %v", res, err)
	}
	tcpAgent := agent("tcp", "1003")
	if res, err := tcpAgent.Register(600, ""); err != nil || res.StatusCode != 200 {
		t.Fatalf("REGISTER over TCP during the flood: %v %v", res, err)
	}
	ids := healthyCalls(t, caller, callee, "e2e-flood-ok", 3)
	flood.end()
	goroutines, rss, conns, polled := peaks.finish()
	t.Logf("flood: %d INVITEs sent, %d answers received; %d half-open connections; peaks over %d samples: goroutines %v (before %v), RSS %.0f MB (before %.0f MB), connections %d",
		flood.sent.Load(), flood.answers.Load(), len(held), polled, goroutines, gor0, rss/1e6, rss0/1e6, conns)

	m := e.metrics(t)
	if m[`routr_guard_bans_total{kind="rate"}`] < 1 {
		t.Errorf("the flooding source was not banned: routr_guard_bans_total{kind=\"rate\"} = %v", m[`routr_guard_bans_total{kind="rate"}`])
	}
	if flood.answers.Load() == 0 {
		t.Errorf("the edge answered none of %d INVITEs: the flood did not reach it", flood.sent.Load())
	}
	// Generous bounds: a few goroutines per held connection and per
	// transaction admitted before the ban, and a few hundred MB of a
	// race-detector binary.
	if limit := gor0 + float64(4*len(held)) + 3000; goroutines > limit {
		t.Errorf("goroutines peaked at %v, above %v", goroutines, limit)
	}
	if limit := rss0 + 512e6; rss > limit {
		t.Errorf("RSS peaked at %.0f MB, above %.0f MB", rss/1e6, limit/1e6)
	}
	waitEnded(t, sub, "e2e-flood-ok", ids, "NORMAL_CLEARING")

	// The edge closes every half-open connection itself, silent or
	// stopped mid-message or mid-handshake, at its handshake deadline
	// (10 s after accept): only the TCP agent's stays.
	deadline := time.Now().Add(40 * time.Second)
	for {
		open := e.metrics(t)["routr_sip_connections_open"]
		if open <= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v connections still open; the edge did not close the half-open ones", open)
		}
		time.Sleep(250 * time.Millisecond)
	}
	// Then the edge comes back to where it started.
	for _, c := range held {
		c.Close()
	}
	held = nil
	tcpAgent.Close()
	backToBaseline(t, e, heap0, gor0)
}
