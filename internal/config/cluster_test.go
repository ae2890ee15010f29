package config

import (
	"strings"
	"testing"
	"time"
)

func TestClusterEnv(t *testing.T) {
	t.Chdir(t.TempDir())
	c, err := Load(envOf(map[string]string{
		"LOCATION_STORE":          "JetStream",
		"CLUSTER_NATS_URL":        "10.0.0.1:4222, nats://10.0.0.2:4222",
		"LOCATION_BUCKET":         "edge_loc",
		"CLUSTER_REPLICAS":        "3",
		"LOCATION_BUCKET_MAX_AGE": "3h",
		"CLUSTER_SECRET":          "0123456789abcdef",
		"CLUSTER_ADDRESS":         "10.0.0.5:5060",
		"CLUSTER_TRANSPORT":       "TCP",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := Cluster{Enabled: true, NATSURL: "nats://10.0.0.1:4222,nats://10.0.0.2:4222", Bucket: "edge_loc",
		Replicas: 3, MaxAge: 3 * time.Hour, Secret: []byte("0123456789abcdef"), Address: "10.0.0.5:5060", Transport: "tcp"}
	got := c.Cluster
	if got.Enabled != want.Enabled || got.NATSURL != want.NATSURL || got.Bucket != want.Bucket || got.Replicas != want.Replicas ||
		got.MaxAge != want.MaxAge || string(got.Secret) != string(want.Secret) || got.Address != want.Address || got.Transport != want.Transport {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if strings.Contains(got.String(), "0123456789abcdef") {
		t.Errorf("String shows the secret: %s", got)
	}
}

func TestClusterEnvErrors(t *testing.T) {
	t.Chdir(t.TempDir())
	for name, v := range map[string]string{
		"LOCATION_STORE":          "redis",
		"CLUSTER_NATS_URL":        "http://x",
		"LOCATION_BUCKET":         "a.b",
		"CLUSTER_REPLICAS":        "0",
		"LOCATION_BUCKET_MAX_AGE": "10s",
		"CLUSTER_SECRET":          "short",
		"CLUSTER_ADDRESS":         "10.0.0.5",
		"CLUSTER_TRANSPORT":       "ws",
	} {
		_, err := Load(envOf(map[string]string{name: v}))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%q: error %v, want one naming %s", name, v, err, name)
		}
	}
}
