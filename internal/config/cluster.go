package config

import (
	"fmt"
	"net"
	"strings"
	"time"
)

// Cluster configures several edge instances sharing state through NATS
// JetStream (LOCATION_STORE=jetstream and the CLUSTER_* variables).
type Cluster struct {
	// Enabled is LOCATION_STORE=jetstream: bindings, call records and
	// round-robin turns live in JetStream key-value buckets shared by
	// every instance. LOCATION_STORE=memory (the default) keeps them in
	// the process.
	Enabled bool
	// NATSURL is CLUSTER_NATS_URL: the servers holding the buckets,
	// comma-separated; empty means NATS_PUBLISHER_URL's.
	NATSURL string
	// Bucket is LOCATION_BUCKET, the bindings' bucket; the calls and
	// turns buckets are named after it ("_calls", "_turns").
	Bucket string
	// Replicas is CLUSTER_REPLICAS, the replica count of buckets the edge
	// creates; 0 means 3, or 1 when the NATS cluster is smaller.
	Replicas int
	// MaxAge is LOCATION_BUCKET_MAX_AGE, how long the bindings' bucket
	// keeps a key nobody deleted; 0 means REGISTRAR_MAX_EXPIRES plus 10
	// minutes.
	MaxAge time.Duration
	// Secret is CLUSTER_SECRET: it signs the Route by which one instance
	// hands a request to the instance holding the callee's connection.
	// Every instance must share it; empty turns that hand-over off.
	Secret []byte
	// Address is CLUSTER_ADDRESS, host:port where the other instances
	// reach this one's SIP listener of CLUSTER_TRANSPORT; empty means that
	// listener's bind address when it is a specific IP.
	Address string
	// Transport is CLUSTER_TRANSPORT, udp (default) or tcp.
	Transport string
}

// applyClusterEnv reads LOCATION_STORE and the CLUSTER_* variables.
func applyClusterEnv(e *envReader, c *Cluster) {
	if v, ok := e.get("LOCATION_STORE"); ok {
		switch strings.ToLower(v) {
		case "memory":
			c.Enabled = false
		case "jetstream":
			c.Enabled = true
		default:
			e.errorf("LOCATION_STORE", "invalid value %q (want memory or jetstream)", v)
		}
	}
	anyURL := func(u string, _ []string) (string, error) { return natsURL(u) }
	if urls, ok := e.items("CLUSTER_NATS_URL", "URLs", anyURL); ok {
		c.NATSURL = strings.Join(urls, ",")
	}
	if v, ok := e.get("LOCATION_BUCKET"); ok {
		if !validBucket(v) {
			e.errorf("LOCATION_BUCKET", "invalid bucket name %q (letters, digits, - and _ only)", v)
		} else {
			c.Bucket = v
		}
	}
	e.positive("CLUSTER_REPLICAS", 5, &c.Replicas)
	e.duration("LOCATION_BUCKET_MAX_AGE", time.Minute, false, &c.MaxAge)
	if v := e.env("CLUSTER_SECRET"); v != "" {
		if len(v) < 16 {
			e.errorf("CLUSTER_SECRET", "too short (%d bytes; want at least 16)", len(v))
		} else {
			c.Secret = []byte(v)
		}
	}
	if v, ok := e.get("CLUSTER_ADDRESS"); ok {
		if h, p, err := net.SplitHostPort(v); err != nil || h == "" || !validPort(p) {
			e.errorf("CLUSTER_ADDRESS", "invalid address %q (want host:port, as in 10.0.0.5:5060)", v)
		} else {
			c.Address = v
		}
	}
	if v, ok := e.get("CLUSTER_TRANSPORT"); ok {
		switch v = strings.ToLower(v); v {
		case "udp", "tcp":
			c.Transport = v
		default:
			e.errorf("CLUSTER_TRANSPORT", "invalid value %q (want udp or tcp)", v)
		}
	}
}

// validBucket accepts a JetStream key-value bucket name.
func validBucket(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// String describes the cluster settings for logs, without the secret.
func (c Cluster) String() string {
	return fmt.Sprintf("store=jetstream bucket=%s address=%s/%s forwarding=%v", c.Bucket, c.Address, c.Transport, len(c.Secret) > 0)
}
