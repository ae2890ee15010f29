package e2e

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// TestConnectionScale measures what concurrent connections cost the edge:
// ROUTR_CONN_SCALE=N opens N connections over each of tcp, ws and wss to a
// routr binary built without the race detector, each one carrying a
// REGISTER and its 401, and reports the binary's resident memory and
// goroutines per connection. Skipped unless ROUTR_CONN_SCALE is set:
//
//	ROUTR_CONN_SCALE=5000 go test -run TestConnectionScale -v ./test/e2e
func TestConnectionScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("ROUTR_CONN_SCALE"))
	if n <= 0 {
		t.Skip("set ROUTR_CONN_SCALE to the number of connections per transport")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "routr")
	build := exec.Command("go", "build", "-o", bin, "./cmd/routr")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	certFile, keyFile := selfSigned(t, dir)
	ports := map[string]int{"tcp": freePort(t), "ws": freePort(t), "wss": freePort(t)}
	cfg := fmt.Sprintf(`spec:
  bindAddr: 127.0.0.1
  transport:
    - {protocol: udp, port: %d}
    - {protocol: tcp, port: %d}
    - {protocol: ws, port: %d}
    - {protocol: wss, port: %d}
  securityContext: {certFile: %s, keyFile: %s}
`, ports["tcp"], ports["tcp"], ports["ws"], ports["wss"], certFile, keyFile)
	cfgPath := filepath.Join(dir, "edgeport.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "CONFIG_PATH="+cfgPath, "HTTP_ADDR="+httpAddr,
		"PATH_TO_RESOURCES="+filepath.Join(repoRoot, "config", "resources"), "LOG_LEVEL=error", "ENABLE_PPROF=true")
	var logBuf strings.Builder
	cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}()
	waitHTTP(t, httpAddr)

	measure := func() (rssKB, heapKB, goroutines int) {
		// A heap profile with gc=1 collects first: what is left is live.
		if res, err := http.Get("http://" + httpAddr + "/debug/pprof/heap?gc=1"); err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "VmRSS:") {
				rssKB, _ = strconv.Atoi(strings.Fields(l)[1])
			}
		}
		res, err := http.Get("http://" + httpAddr + "/metrics")
		if err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			for _, l := range strings.Split(string(body), "\n") {
				if strings.HasPrefix(l, "go_goroutines ") {
					goroutines, _ = strconv.Atoi(strings.Fields(l)[1])
				}
				if strings.HasPrefix(l, "go_memstats_heap_inuse_bytes ") {
					f, _ := strconv.ParseFloat(strings.Fields(l)[1], 64)
					heapKB = int(f / 1024)
				}
			}
		}
		return
	}
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for _, tp := range []string{"tcp", "ws", "wss"} {
		time.Sleep(500 * time.Millisecond)
		rss0, heap0, g0 := measure()
		start := time.Now()
		conns := openRegistered(t, tp, fmt.Sprintf("127.0.0.1:%d", ports[tp]), n)
		held = append(held, conns...)
		took := time.Since(start)
		time.Sleep(500 * time.Millisecond)
		rss1, heap1, g1 := measure()
		per := func(a, b int) float64 { return float64(b-a) / float64(len(conns)) }
		t.Logf("%s: %d connections held (REGISTER and 401 on each) in %v; edge RSS %d -> %d MB: per connection %.1f KB resident, %.1f KB live heap, %.2f goroutines",
			tp, len(conns), took.Round(time.Millisecond), rss0/1024, rss1/1024, per(rss0, rss1), per(heap0, heap1), per(g0, g1))
	}
	if strings.Contains(logBuf.String(), "panic") {
		t.Fatalf("edge log:\n%s", logBuf.String())
	}
}

// openRegistered opens n connections, each sending a REGISTER and reading
// its 401, 64 at a time.
func openRegistered(t *testing.T, tp, addr string, n int) []net.Conn {
	t.Helper()
	out := make([]net.Conn, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := registerOnce(tp, addr, i)
			if err != nil {
				errs <- fmt.Errorf("%s connection %d: %w", tp, i, err)
				return
			}
			out[i] = c
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return out
}

func registerOnce(tp, addr string, i int) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	host := fmt.Sprintf("c%d.invalid", i)
	msg := func(local string) []byte {
		return []byte(fmt.Sprintf("REGISTER sip:sip.local SIP/2.0\r\n"+
			"Via: SIP/2.0/%s %s;branch=z9hG4bK-scale-%d;rport\r\n"+
			"Max-Forwards: 70\r\nFrom: <sip:1001@sip.local>;tag=s%d\r\nTo: <sip:1001@sip.local>\r\n"+
			"Call-ID: scale-%s-%d\r\nCSeq: 1 REGISTER\r\nContact: <sip:1001@%s;transport=%s>\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n",
			strings.ToUpper(tp), local, i, i, tp, i, local, tp))
	}
	switch tp {
	case "tcp":
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		if _, err := c.Write(msg(c.LocalAddr().String())); err != nil {
			return nil, err
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || !strings.Contains(line, "401") {
			return nil, fmt.Errorf("answer %q %v", line, err)
		}
		return c, nil
	default:
		d := ws.Dialer{Protocols: []string{"sip"}, TLSConfig: &tls.Config{InsecureSkipVerify: true}}
		c, _, _, err := d.Dial(ctx, tp+"://"+addr)
		if err != nil {
			return nil, err
		}
		if err := wsutil.WriteClientText(c, msg(host)); err != nil {
			return nil, err
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		data, err := wsutil.ReadServerText(c)
		if err != nil || !strings.Contains(string(data), "401") {
			return nil, fmt.Errorf("answer %q %v", data, err)
		}
		return c, nil
	}
}

func waitHTTP(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get("http://" + addr + "/metrics"); err == nil {
			res.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("edge did not start")
}

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}
