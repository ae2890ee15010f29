package config

import (
	"strings"
	"testing"
	"time"
)

func TestLimitsEnv(t *testing.T) {
	path := writeFile(t, "edgeport.yaml", routrEdgePort)
	c, err := Load(envOf(map[string]string{"CONFIG_PATH": path}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Limits != (Limits{}) {
		t.Errorf("defaults: got %+v, want zero values (the edge's defaults)", c.Limits)
	}
	c, err = Load(envOf(map[string]string{
		"CONFIG_PATH":                      path,
		"SIP_MAX_MESSAGE_SIZE":             "4096",
		"SIP_MAX_TRANSACTIONS":             "1000",
		"SIP_OVERLOAD_RETRY_AFTER":         "30",
		"SIP_MAX_CONNECTIONS":              "200",
		"SIP_MAX_CONNECTIONS_PER_SOURCE":   "20",
		"SIP_CONNECTION_IDLE_TIMEOUT":      "10m",
		"SIP_CONNECTION_WRITE_TIMEOUT":     "2s",
		"SIP_CONNECTION_HANDSHAKE_TIMEOUT": "5s",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := Limits{
		MaxMessageSize: 4096, MaxTransactions: 1000, RetryAfter: 30 * time.Second,
		MaxConnections: 200, MaxConnectionsPerSource: 20,
		ConnectionIdleTimeout: 10 * time.Minute, ConnectionWriteTimeout: 2 * time.Second, ConnectionHandshakeTimeout: 5 * time.Second,
	}
	if c.Limits != want {
		t.Errorf("got %+v, want %+v", c.Limits, want)
	}
	for name, v := range map[string]string{
		"SIP_MAX_MESSAGE_SIZE":           "100",
		"SIP_MAX_TRANSACTIONS":           "0",
		"SIP_OVERLOAD_RETRY_AFTER":       "1.5s",
		"SIP_MAX_CONNECTIONS_PER_SOURCE": "-1",
		"SIP_CONNECTION_WRITE_TIMEOUT":   "1ms",
	} {
		_, err := Load(envOf(map[string]string{"CONFIG_PATH": path, name: v}))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: error %v, want one naming it", name, v, err)
		}
	}
}
