package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/routr-go/routr/internal/config"
)

// TestListenersFromConfig maps spec.transport to listeners and refuses a
// secure transport whose certificate cannot be read, naming the file.
func TestListenersFromConfig(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.crt")
	edgeport := filepath.Join(dir, "edgeport.yaml")
	yaml := `spec:
  transport:
    - {protocol: udp, port: 5060}
    - {protocol: ws, port: 5062}
    - {protocol: wss, port: 5063}
  securityContext:
    certFile: ` + missing + `
    keyFile: ` + missing + `
`
	if err := os.WriteFile(edgeport, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(func(k string) string {
		if k == "CONFIG_PATH" {
			return edgeport
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = edgeListeners(cfg)
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "securityContext") {
		t.Fatalf("edgeListeners: %v, want an error naming %s", err, missing)
	}

	cfg.Transports = cfg.Transports[:2] // udp and ws need no certificate
	ls, err := edgeListeners(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 2 || ls[1].Protocol != "ws" || ls[1].Addr != "0.0.0.0:5062" || ls[1].TLS != nil {
		t.Fatalf("listeners %+v", ls)
	}
}
