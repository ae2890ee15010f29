package resources

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"
)

// benchFiles returns resource files as bench/cmd/bench writes them: one
// Domain and n Agents, each with its own Credentials, in two files.
func benchFiles(n int) fstest.MapFS {
	var agents, creds strings.Builder
	for i := 1; i <= n; i++ {
		user := fmt.Sprintf("u%06d", i)
		fmt.Fprintf(&agents, `- apiVersion: v2beta1
  kind: Agent
  ref: agent-%[1]s
  metadata:
    name: Bench agent %[1]s
  spec:
    username: "%[1]s"
    domainRef: domain-bench
    credentialsRef: credentials-%[1]s
    privacy: None
`, user)
		fmt.Fprintf(&creds, `- apiVersion: v2beta1
  kind: Credentials
  ref: credentials-%[1]s
  metadata:
    name: Bench credentials %[1]s
  spec:
    credentials:
      username: "%[1]s"
      password: "%016x"
`, user, uint64(i)*0x9e3779b97f4a7c15)
	}
	return fstest.MapFS{
		"domains.yaml": {Data: []byte(`- apiVersion: v2beta1
  kind: Domain
  ref: domain-bench
  metadata:
    name: Bench domain
  spec:
    context:
      domainUri: sip.local
`)},
		"agents.yaml":      {Data: []byte(agents.String())},
		"credentials.yaml": {Data: []byte(creds.String())},
	}
}

// BenchmarkLoad100k loads 100,000 Agents with their Credentials from
// files (Parse and Build) and reports the heap the Set holds once the
// load's garbage is collected: what an edge keeps for its resources.
func BenchmarkLoad100k(b *testing.B) {
	const n = 100_000
	fsys := benchFiles(n)
	var held uint64
	for b.Loop() {
		before := heapAfterGC()
		s, err := LoadFS(fsys)
		if err != nil {
			b.Fatal(err)
		}
		after := heapAfterGC()
		if len(s.Agents()) != n || s.Agent("domain-bench", "u000042").Credentials == nil {
			b.Fatal("agents not loaded")
		}
		held = after - before
	}
	b.ReportMetric(float64(held)/n, "heap-B/agent")
	b.ReportMetric(float64(held)/(1<<20), "heap-MB")
}

// BenchmarkBuild100k is Build alone on 100,000 parsed Agents with their
// Credentials, with the heap the Set holds.
func BenchmarkBuild100k(b *testing.B) {
	const n = 100_000
	fsys := benchFiles(n)
	var rs []Resource
	for _, name := range []string{"domains.yaml", "agents.yaml", "credentials.yaml"} {
		got, err := Parse(name, fsys[name].Data)
		if err != nil {
			b.Fatal(err)
		}
		rs = append(rs, got...)
	}
	var held uint64
	for b.Loop() {
		before := heapAfterGC()
		s, err := Build(rs)
		if err != nil {
			b.Fatal(err)
		}
		held = heapAfterGC() - before
		runtime.KeepAlive(s)
	}
	b.ReportMetric(float64(held)/n, "heap-B/agent")
}

// heapAfterGC returns the bytes of live heap objects after a collection.
func heapAfterGC() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkLookup100k finds agents by domain and username, and
// credentials by ref, among 100,000 of each: what a REGISTER costs the
// Set.
func BenchmarkLookup100k(b *testing.B) {
	const n = 100_000
	s, err := LoadFS(benchFiles(n))
	if err != nil {
		b.Fatal(err)
	}
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("u%06d", i+1)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		a := s.Agent("domain-bench", users[i%n])
		if a == nil || s.Credentials(a.CredentialsRef) == nil {
			b.Fatal("not found")
		}
		i += 7919
	}
}
