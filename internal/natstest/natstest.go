// Package natstest provides real NATS servers with JetStream, in the
// process, for tests: one server, or a cluster of three whose nodes can be
// stopped and started again on the same ports and data.
package natstest

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Node is one NATS server with JetStream.
type Node struct {
	Name      string
	Port      int    // client port
	RoutePort int    // cluster port; 0 for a single server
	Dir       string // JetStream store
	routes    []string
	s         *server.Server
}

// URL is the node's client URL.
func (n *Node) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.Port) }

// Start starts the node (again, after Stop) on its ports and store.
func (n *Node) Start() error {
	opts := &server.Options{
		ServerName: n.Name,
		Host:       "127.0.0.1",
		Port:       n.Port,
		JetStream:  true,
		StoreDir:   n.Dir,
		NoSigs:     true,
		NoLog:      true,
	}
	if n.RoutePort != 0 {
		opts.Cluster = server.ClusterOpts{Name: "routr-test", Host: "127.0.0.1", Port: n.RoutePort}
		for _, r := range n.routes {
			opts.Routes = append(opts.Routes, server.RoutesFromStr(r)...)
		}
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("nats %s: %w", n.Name, err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		s.WaitForShutdown()
		return fmt.Errorf("nats %s: not ready within 10s", n.Name)
	}
	n.s = s
	return nil
}

// Stop shuts the node down and waits for it; its store stays.
func (n *Node) Stop() {
	if n.s != nil {
		n.s.Shutdown()
		n.s.WaitForShutdown()
		n.s = nil
	}
}

// Running reports whether the node is started.
func (n *Node) Running() bool { return n.s != nil }

// JetStreamReady reports whether the node's JetStream is up (in a cluster:
// has a meta leader).
func (n *Node) JetStreamReady() bool {
	return n.s != nil && n.s.JetStreamEnabled() && (n.RoutePort == 0 || n.s.JetStreamIsClustered() && n.s.JetStreamIsCurrent())
}

// Cluster is a set of nodes.
type Cluster struct{ Nodes []*Node }

// URLs is every node's client URL, comma-separated, as NATS clients take
// them.
func (c *Cluster) URLs() string {
	var u []string
	for _, n := range c.Nodes {
		u = append(u, n.URL())
	}
	return strings.Join(u, ",")
}

// Stop stops every node.
func (c *Cluster) Stop() {
	for _, n := range c.Nodes {
		n.Stop()
	}
}

// Single starts one server on a free loopback port and stops it when the
// test ends.
func Single(t testing.TB) *Node {
	t.Helper()
	n := &Node{Name: "single", Port: FreePort(t), Dir: t.TempDir()}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	return n
}

// StartCluster starts a cluster of size nodes on free loopback ports,
// waits until JetStream has a leader, and stops it when the test ends.
func StartCluster(t testing.TB, size int) *Cluster {
	t.Helper()
	c := &Cluster{}
	for i := range size {
		c.Nodes = append(c.Nodes, &Node{Name: fmt.Sprintf("n%d", i+1), Port: FreePort(t), RoutePort: FreePort(t), Dir: t.TempDir()})
	}
	for _, n := range c.Nodes {
		for _, o := range c.Nodes {
			if o != n {
				n.routes = append(n.routes, fmt.Sprintf("nats-route://127.0.0.1:%d", o.RoutePort))
			}
		}
	}
	t.Cleanup(c.Stop)
	for _, n := range c.Nodes {
		if err := n.Start(); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.WaitJetStream(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	return c
}

// WaitJetStream waits until every running node sees a JetStream leader.
func (c *Cluster) WaitJetStream(d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		ok := true
		for _, n := range c.Nodes {
			if n.Running() && !n.JetStreamReady() {
				ok = false
			}
		}
		if ok {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("nats cluster: JetStream not ready within %s", d)
}

// FreePort returns a loopback TCP port that was free a moment ago, from
// the range 32000-39999 (below the kernel's ephemeral range, away from the
// e2e tests' 20000-32000 and from the shared server on 4222).
func FreePort(t testing.TB) int {
	t.Helper()
	for range 1000 {
		p := 12000 + int(portSeq.add())%8000
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		return p
	}
	t.Fatal("natstest: no free port")
	return 0
}
