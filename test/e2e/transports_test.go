package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/routr-go/routr/internal/siptest"
)

// TestSecureTransportsAgainstBinary configures tls, ws and wss in an
// EdgePort file with a PEM certificate the test made, and calls between
// phones on each of them and UDP through the built binary.
func TestSecureTransportsAgainstBinary(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := selfSigned(t, dir)
	ports := map[string]int{"udp": freePort(t), "tls": freePort(t), "ws": freePort(t), "wss": freePort(t)}
	cfg := fmt.Sprintf(`kind: EdgePort
spec:
  bindAddr: 127.0.0.1
  transport:
    - {protocol: udp, port: %d}
    - {protocol: tls, port: %d}
    - {protocol: ws, port: %d}
    - {protocol: wss, port: %d}
  securityContext:
    certFile: %s
    keyFile: %s
`, ports["udp"], ports["tls"], ports["ws"], ports["wss"], certFile, keyFile)
	cfgPath := filepath.Join(dir, "edgeport.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	var logBuf bytes.Buffer
	cmd := exec.Command(binary)
	cmd.Env = append(os.Environ(), "CONFIG_PATH="+cfgPath, "HTTP_ADDR="+httpAddr,
		"PATH_TO_RESOURCES="+filepath.Join(repoRoot, "config", "resources"), "LOG_LEVEL=warn")
	cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("edge exited with %v; log:\n%s", err, logBuf.String())
			}
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("edge did not stop; log:\n%s", logBuf.String())
		}
		if strings.Contains(logBuf.String(), "DATA RACE") {
			t.Errorf("race detected:\n%s", logBuf.String())
		}
	})
	waitHTTP(t, httpAddr)

	phone := func(tp, user string) *siptest.Phone {
		t.Helper()
		p, err := siptest.NewPhone(tp, user, "sip.local", "1234", fmt.Sprintf("127.0.0.1:%d", ports[tp]))
		if err != nil {
			t.Fatalf("%s phone: %v; log:\n%s", tp, err, logBuf.String())
		}
		t.Cleanup(p.Close)
		return p
	}
	for _, c := range []struct{ caller, callee string }{{"wss", "udp"}, {"udp", "wss"}, {"tls", "ws"}} {
		a, b := phone(c.caller, "1001"), phone(c.callee, "1002")
		if res, err := b.Register(300, ""); err != nil || res.StatusCode != 200 {
			t.Fatalf("REGISTER over %s: %v %v", c.callee, res, err)
		}
		call := siptest.Dial(t, a, b, "1002", "e2e-"+c.caller+"-"+c.callee)
		ok := call.Answer()
		call.Hangup(ok, true)
		b.Close()
	}
}
