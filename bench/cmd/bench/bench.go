package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/routr-go/routr/internal/events"
)

const (
	ladderRegister = "register"
	ladderCalls    = "calls"
	// ladderTrunk: calls from a trunk its ACL admits, which need no
	// challenge, to a number routed to the callee agent.
	ladderTrunk = "trunk"
	// ladderCancel: trunk calls the caller cancels while they ring; the
	// edge's 100 Trying and the callee's 487, relayed, are required.
	ladderCancel   = "cancel"
	trunkHost      = "trunk.bench.local"
	trunkNumber    = "+15550000001"
	domain         = "sip.local"
	sippBuffer     = "4194304" // sipp socket buffers; the kernel caps them at net.core.[rw]mem_max
	goroutineSlack = 20        // goroutines above the ladder's start still counted as "back"
)

type bench struct {
	o       options
	procs   *procSet
	root    string // module root
	workDir string // temp dir: binary, config, results, logs
	cfgDir  string
	outDir  string
	binary  string
	sipp    string // a symlink to sipp, see newBench
	commit  string // set when built from -rev
	scen    string // scenario dir
	subject string
	natsURL string
	natsSrv *events.EmbeddedServer // -nats separate
	em      *emitter
	results string

	sipPort, regPort, uacPort, uasPort int

	seq       int
	summaries map[string]*summary // by label: ladder, events mode, repetition
	order     []string            // labels in the order run
	// onEdge, when set, is told of every routr started (the soak samples
	// it).
	onEdge func(*edge)
}

func newBench(ctx context.Context, o options, procs *procSet) (*bench, error) {
	b := &bench{o: o, procs: procs, summaries: map[string]*summary{}}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" || strings.TrimSpace(string(out)) == os.DevNull {
		return nil, fmt.Errorf("run from inside the routr-go module (go env GOMOD: %v)", err)
	}
	b.root = filepath.Dir(strings.TrimSpace(string(out)))
	b.workDir, err = os.MkdirTemp("", "routr-bench-")
	if err != nil {
		return nil, err
	}
	b.outDir = o.outDir
	if b.outDir == "" {
		b.outDir = filepath.Join(b.workDir, "out")
	}
	b.cfgDir = filepath.Join(b.workDir, "config")
	b.scen = filepath.Join(b.workDir, "scenarios")
	for _, d := range []string{b.outDir, b.cfgDir, b.scen, filepath.Join(b.workDir, "bin")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	logf("work dir %s", b.workDir)

	// The binary under test.
	b.binary = filepath.Join(b.workDir, "bin", "routr")
	logf("go build -o %s ./cmd/routr", b.binary)
	srcDir := b.root
	if o.rev != "" {
		// Build a commit, not the working tree: git archive into the work
		// dir (the repository itself is not touched).
		sha, err := exec.Command("git", "-C", b.root, "rev-parse", "--verify", o.rev+"^{commit}").Output()
		if err != nil {
			return nil, fmt.Errorf("-rev %s: not a commit", o.rev)
		}
		b.commit = strings.TrimSpace(string(sha))
		srcDir = filepath.Join(b.workDir, "src")
		if err := os.MkdirAll(srcDir, 0o755); err != nil {
			return nil, err
		}
		sh := exec.CommandContext(ctx, "sh", "-c", `git -C "$1" archive "$2" | tar -x -C "$3"`, "sh", b.root, b.commit, srcDir)
		sh.Stderr = os.Stderr
		if err := sh.Run(); err != nil {
			return nil, fmt.Errorf("git archive %s: %w", o.rev, err)
		}
		logf("building commit %s", b.commit)
	}
	build := exec.CommandContext(ctx, "go", "build", "-o", b.binary, "./cmd/routr")
	build.Dir = srcDir
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}

	// sipp runs through a symlink with another name: on a shared machine a
	// neighbour's `pkill sipp` would otherwise stop our load generators
	// mid-step (seen here: sipp exits 0 on SIGTERM, so it looks like a
	// short, clean run). Interrupted runs are also detected and retried.
	sippPath := o.sippPath
	if sippPath == "" {
		if sippPath, err = exec.LookPath("sipp"); err != nil {
			return nil, errors.New("sipp not found (apt-get install sip-tester)")
		}
	}
	if sippPath, err = filepath.Abs(sippPath); err != nil {
		return nil, err
	}
	b.sipp = filepath.Join(b.workDir, "bin", "sipgen")
	if err := os.Symlink(sippPath, b.sipp); err != nil {
		return nil, err
	}

	for _, s := range []string{"register.xml", "caller.xml", "callee.xml", "trunk.xml", "cancel.xml", "callee-cancel.xml"} {
		data, err := os.ReadFile(filepath.Join(b.root, "bench", "scenarios", s))
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(b.scen, s), data, 0o644); err != nil {
			return nil, err
		}
	}
	for _, p := range []*int{&b.sipPort, &b.regPort, &b.uacPort, &b.uasPort} {
		if *p, err = freePort(); err != nil {
			return nil, err
		}
	}
	if err := writeConfig(b.cfgDir, b.sipPort, o.agents); err != nil {
		return nil, err
	}
	b.subject = "routr"
	switch o.natsURL {
	case natsEmbedded: // routr starts it: see startEdge
	case natsSeparate:
		// The bench's process hosts it: its CPU is counted with the
		// subscriber's (subscriber_cpu_s), not routr's.
		if b.natsSrv, err = events.StartEmbedded(events.EmbeddedOptions{Addr: "127.0.0.1:0", NoJetStream: true, ServerName: "routr-bench"}); err != nil {
			return nil, fmt.Errorf("NATS server: %w", err)
		}
		b.natsURL = b.natsSrv.ClientURL()
	default:
		b.subject = fmt.Sprintf("routrbench%d", os.Getpid()) // do not mix with anyone else's events
		b.natsURL = o.natsURL
	}
	if b.em, b.results, err = newEmitter(b.outDir); err != nil {
		return nil, err
	}
	b.em.emit(b.header(sippPath))
	return b, nil
}

// header is the first result line: what was measured, where, when.
func (b *bench) header(sippPath string) map[string]any {
	commit, dirtyFiles := b.commit, 0
	if commit == "" {
		head, _ := exec.Command("git", "-C", b.root, "rev-parse", "HEAD").Output()
		commit = strings.TrimSpace(string(head))
		dirty, _ := exec.Command("git", "-C", b.root, "status", "--porcelain", "--untracked-files=no").Output()
		dirtyFiles = len(strings.Split(strings.TrimSpace(string(dirty)), "\n"))
		if strings.TrimSpace(string(dirty)) == "" {
			dirtyFiles = 0
		}
	}
	sippV, _ := exec.Command(sippPath, "-v").CombinedOutput()
	goV, _ := exec.Command("go", "version").Output()
	model := ""
	if cpuinfo, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(cpuinfo), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	sv := strings.TrimSpace(string(sippV))
	if i := strings.Index(sv, "SIPp v"); i >= 0 {
		sv = strings.Fields(sv[i:])[1]
	}
	return map[string]any{
		"type":         "run",
		"date":         time.Now().Format(time.RFC3339),
		"commit":       commit,
		"built_from":   map[bool]string{true: "working tree", false: "git archive " + b.commit}[b.commit == ""],
		"dirty_files":  dirtyFiles,
		"nproc":        runtime.NumCPU(),
		"cpu":          model,
		"go":           strings.TrimSpace(string(goV)),
		"sipp":         sv,
		"loadavg":      loadAvg(),
		"agents":       b.o.agents,
		"step_s":       b.o.stepDur.Seconds(),
		"hold_ms":      b.o.hold.Milliseconds(),
		"reg_rates":    b.o.regRates,
		"call_rates":   b.o.callRates,
		"trunk_rates":  b.o.trunkRates,
		"cancel_rates": b.o.cancelRates,
		"nats":         b.o.natsURL,
		"quick":        b.o.quick,
		"work_dir":     b.workDir,
	}
}

// Where routr publishes with events on (-nats).
const (
	natsSeparate = "separate" // a server in the bench's process
	natsEmbedded = "embedded" // routr's own, EMBEDDED_NATS
)

// close stops what newBench started.
func (b *bench) close() {
	if b.natsSrv != nil {
		b.natsSrv.Close()
	}
}

func (b *bench) run(ctx context.Context) error {
	defer os.Remove(b.binary)
	// Repetitions interleave the modes (on, off, on, off...) so that a
	// neighbour's burst of load does not land on one mode only.
	for rep := 1; rep <= b.o.repeat; rep++ {
		for _, mode := range b.o.modes {
			for _, l := range b.o.ladders {
				if err := b.ladder(ctx, l, mode == "on", rep); err != nil {
					return err
				}
			}
		}
	}
	b.ratios()
	b.printTable()
	return nil
}

// stepResult is one line of output per step.
type stepResult struct {
	Type        string         `json:"type"` // "step"
	Ladder      string         `json:"ladder"`
	Events      string         `json:"events"` // on, off
	Rep         int            `json:"rep"`
	Step        int            `json:"step"`
	Tag         string         `json:"tag"` // Call-ID prefix of the step
	TargetRate  int            `json:"target_rate"`
	Achieved    float64        `json:"achieved_rate"`
	Calls       int            `json:"calls"` // -m
	Created     int            `json:"created"`
	Successful  int            `json:"successful"`
	Failed      int            `json:"failed"`     // sipp FailedCall, caller side
	Unfinished  int            `json:"unfinished"` // created, neither successful nor failed when sipp stopped
	Retrans     int            `json:"retransmissions"`
	FailedKinds map[string]int `json:"failed_kinds,omitempty"`

	UASIncoming   int            `json:"uas_incoming,omitempty"`
	UASSuccessful int            `json:"uas_successful,omitempty"`
	UASFailed     int            `json:"uas_failed,omitempty"`
	UASUnfinished int            `json:"uas_unfinished,omitempty"`
	UASKinds      map[string]int `json:"uas_failed_kinds,omitempty"`
	DeadCallMsgs  int            `json:"dead_call_msgs,omitempty"`
	OutOfCallMsgs int            `json:"out_of_call_msgs,omitempty"`

	RTT *rttStats `json:"rtt,omitempty"` // REGISTER: first REGISTER to 200; calls: first INVITE to 200
	// Probe: the edge's own answer time, µs (see probe.go).
	Probe  *probeStats `json:"probe,omitempty"`
	ByeRTT *rttStats   `json:"bye_rtt,omitempty"` // calls: BYE to 200

	SippWall   float64 `json:"sipp_wall_s"`
	EdgeCPU    float64 `json:"edge_cpu_s"`
	EdgeUtil   float64 `json:"edge_cpu_cores"` // edge CPU seconds / sipp wall seconds
	CPUPerOp   float64 `json:"edge_cpu_us_per_op"`
	SippCPU    float64 `json:"sipp_cpu_s"`
	BenchCPU   float64 `json:"subscriber_cpu_s,omitempty"`
	RSSMB      float64 `json:"edge_rss_mb"`
	PeakRSSMB  float64 `json:"edge_rss_peak_mb"`
	Goroutines int     `json:"edge_goroutines"`
	// Datagrams the kernel dropped at the edge's UDP socket (receive
	// buffer full), from /proc/net/udp; sipp's are in sipp_udp_drops.
	EdgeUDPDrops int64 `json:"edge_udp_drops"`
	SippUDPDrops int64 `json:"sipp_udp_drops"`

	EventsByType map[string]eventStats `json:"event_counts,omitempty"`
	EndedCauses  map[string]int        `json:"ended_causes,omitempty"` // call.ended by hangupCause
	okIDs        map[string]bool
	OtherEvents  map[string]int `json:"other_events,omitempty"`
	EdgeDropped  int            `json:"edge_events_dropped,omitempty"`
	EventsSettle float64        `json:"events_settle_s,omitempty"`

	LoadStart string   `json:"loadavg_start"`
	LoadEnd   string   `json:"loadavg_end"`
	Retried   int      `json:"retried,omitempty"`
	Clean     bool     `json:"clean"`
	Why       []string `json:"why,omitempty"`
	Errors    []string `json:"sipp_errors,omitempty"`
	Dir       string   `json:"dir,omitempty"`
}

type summary struct {
	Type         string `json:"type"` // "summary"
	Ladder       string `json:"ladder"`
	Events       string `json:"events"`
	Rep          int    `json:"rep"`
	HighestClean int    `json:"highest_clean_rate"`
	// HalfRate is the highest step at or below half the highest clean
	// rate, and HalfRateProbe the probe's answer times there: the
	// latency the edge adds at half its maximum.
	HalfRate        int                `json:"half_rate,omitempty"`
	HalfRateProbe   *probeStats        `json:"half_rate_probe,omitempty"`
	FirstFailed     int                `json:"first_failed_rate,omitempty"`
	FailedWhy       []string           `json:"first_failed_why,omitempty"`
	Steps           int                `json:"steps"`
	EdgeExit        int                `json:"edge_exit_code"`
	EdgeStopS       float64            `json:"edge_stop_s"`
	LogWarn         int                `json:"edge_log_warn"`
	LogError        int                `json:"edge_log_error"`
	Crash           []string           `json:"edge_crash,omitempty"`
	Drained         bool               `json:"drained"`
	DrainS          float64            `json:"drain_s"`
	AfterDrain      map[string]float64 `json:"after_drain,omitempty"`
	GoroutinesStart int                `json:"goroutines_start"`
	Restarts        int                `json:"edge_restarts,omitempty"` // routr stopped from outside and started again
	GoroutinesBack  bool               `json:"goroutines_back"`         // within goroutineSlack of the start after the drain
	GoroutineTop    []string           `json:"goroutine_top,omitempty"` // largest groups of the pprof dump when not back
	GoroutineDump   string             `json:"goroutine_dump,omitempty"`
	HeapAfterGCMB   float64            `json:"heap_inuse_after_gc_mb"`     // after the drain and a forced GC
	RSSIdleMB       float64            `json:"edge_rss_idle_mb,omitempty"` // resident after the drain and -idle at rest, before that GC
	HeapProfile     string             `json:"heap_profile,omitempty"`
	// Events of the failed step counted again after the drain: what was
	// only late (e.g. a BYE that timed out 32 s later) is no longer lost.
	FailedStepEventsAfterDrain map[string]eventStats `json:"failed_step_events_after_drain,omitempty"`
	FailedStepCausesAfterDrain map[string]int        `json:"failed_step_causes_after_drain,omitempty"`
	// Calls of the failed step started and still not ended after the
	// drain (successful or not): the edge still tracks them.
	FailedStepUnended       int      `json:"failed_step_unended,omitempty"`
	FailedStepUnendedSample []string `json:"failed_step_unended_sample,omitempty"`
	CallersRegistered       int      `json:"callers_registered,omitempty"` // calls ladder: agents registered from the caller port (not needed for routing)
	Log                     string   `json:"edge_log"`

	steps []stepResult
}

func (b *bench) ladder(ctx context.Context, ladder string, eventsOn bool, rep int) error {
	mode := map[bool]string{true: "on", false: "off"}[eventsOn]
	label := ladder + "-events-" + mode
	if b.o.repeat > 1 {
		label += fmt.Sprintf("-rep%d", rep)
	}
	sum := &summary{Type: "summary", Ladder: ladder, Events: mode, Rep: rep}
	b.summaries[label] = sum
	b.order = append(b.order, label)

	var e *edge
	var ctr *counter
	starts := 0
	// up starts routr (and the subscriber, and registers the call agents).
	up := func() error {
		starts++
		name := label
		if starts > 1 {
			name = fmt.Sprintf("%s-%d", label, starts)
			sum.Restarts++
		}
		logf("=== %s: starting routr", name)
		var err error
		if e, err = b.startEdge(ctx, name, eventsOn); err != nil {
			return err
		}
		sum.Log = e.logPath
		if b.onEdge != nil {
			b.onEdge(e)
		}
		if eventsOn {
			ctr.close()
			if ctr, err = newCounter(b.natsURL, b.subject); err != nil {
				return err
			}
		}
		if isCalls(ladder) {
			if err := b.registerAgents(ctx, e, sum, ladder == ladderCalls); err != nil {
				return err
			}
		}
		return nil
	}
	defer func() {
		ctr.close()
		if e != nil {
			e.stop()
		}
	}()
	if err := up(); err != nil {
		return err
	}
	sum.GoroutinesStart = int(e.metrics()["go_goroutines"])

	rates := b.ratesOf(ladder)
	for i, rate := range rates {
		if err := ctx.Err(); err != nil {
			return err
		}
		var r stepResult
		for attempt := 0; ; attempt++ {
			var interrupted bool
			var err error
			r, interrupted, err = b.step(ctx, e, ctr, ladder, mode, rep, i+1, rate)
			if err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err // Ctrl-C: a cut-short step is no result
			}
			if !interrupted || attempt >= b.o.retries {
				r.Retried = attempt
				break
			}
			logf("step %d (%d/s) interrupted from outside (%s); running it again", i+1, rate, strings.Join(r.Why, "; "))
			if e.proc.exited() {
				if err := up(); err != nil {
					return err
				}
			}
			sleepCtx(ctx, b.o.pause)
		}
		sum.steps = append(sum.steps, r)
		sum.Steps++
		b.em.emit(r)
		logf("%s step %d: %d/s -> %.0f/s, ok %d, failed %d, unfinished %d, retrans %d, p50/p99 %v/%v ms, edge cpu %.1fs (%.2f cores), rss %.0f MB, clean=%v %s",
			label, r.Step, rate, r.Achieved, r.Successful, r.Failed+r.UASFailed, r.Unfinished+r.UASUnfinished, r.Retrans,
			rttOr(r.RTT, func(s *rttStats) float64 { return s.P50 }), rttOr(r.RTT, func(s *rttStats) float64 { return s.P99 }),
			r.EdgeCPU, r.EdgeUtil, r.RSSMB, r.Clean, strings.Join(r.Why, "; "))
		if !r.Clean {
			sum.FirstFailed = rate
			sum.FailedWhy = append(append([]string{}, r.Why...), r.Errors...)
			break
		}
		sum.HighestClean = rate
		sum.HalfRate, sum.HalfRateProbe = 0, nil
		for _, st := range sum.steps {
			if st.Clean && st.TargetRate*2 <= rate && st.TargetRate > sum.HalfRate {
				sum.HalfRate, sum.HalfRateProbe = st.TargetRate, st.Probe
			}
		}
		if i+1 < len(rates) {
			sleepCtx(ctx, b.o.pause)
		}
	}
	if e.proc.exited() {
		// Crashed (or stopped from outside on the last attempt): report it.
		sum.EdgeExit = e.proc.exitCode()
		sum.LogWarn, sum.LogError, sum.Crash = logProblems(e.logPath)
		sum.Crash = append(sum.Crash, "routr exited before the end of the ladder")
		b.em.emit(sum)
		logf("=== %s: routr exited (code %d) before the end of the ladder; log %s", label, sum.EdgeExit, e.logPath)
		return ctx.Err()
	}

	// Leak check: with the load gone, transactions, dialogs and calls must
	// drain to zero and goroutines come back near where they started.
	t0 := time.Now()
	keys := []string{"routr_sip_server_transactions_active", "routr_sip_client_transactions_active", "routr_sip_dialogs_awaiting_ack", "routr_calls_active"}
	for {
		m := e.metrics()
		zero := len(m) > 0
		for _, k := range keys {
			if m[k] != 0 {
				zero = false
			}
		}
		goroutinesBack := m["go_goroutines"] <= float64(sum.GoroutinesStart+goroutineSlack)
		if (zero && goroutinesBack) || time.Since(t0) > b.o.drainLimit || ctx.Err() != nil || e.proc.exited() {
			sum.Drained = zero
			sum.GoroutinesBack = goroutinesBack
			sum.DrainS = round(time.Since(t0).Seconds(), 1)
			sum.AfterDrain = map[string]float64{}
			for _, k := range append(keys, "go_goroutines", "process_resident_memory_bytes", "go_memstats_heap_inuse_bytes", "routr_location_bindings", "routr_events_queued") {
				if v, ok := m[k]; ok {
					sum.AfterDrain[k] = v
				}
			}
			if n := len(sum.steps); ctr != nil && n > 0 && !sum.steps[n-1].Clean {
				last := sum.steps[n-1]
				sum.FailedStepEventsAfterDrain = map[string]eventStats{}
				for t := range last.EventsByType {
					sum.FailedStepEventsAfterDrain[t] = ctr.stats(last.Tag, t, last.okIDs, last.Successful)
				}
				if isCalls(ladder) {
					sum.FailedStepCausesAfterDrain = ctr.causes(last.Tag)
					sum.FailedStepUnended, sum.FailedStepUnendedSample = ctr.unended(last.Tag, 3)
				}
			}
			if b.o.idle > 0 && !e.proc.exited() {
				select {
				case <-time.After(b.o.idle):
				case <-ctx.Done():
				}
				sum.RSSIdleMB = round(e.metrics()["process_resident_memory_bytes"]/1e6, 1)
			}
			// Heap after a forced GC (pprof's gc=1): what the load left
			// behind, garbage excluded. The profile is kept for pprof.
			heapPath := filepath.Join(b.outDir, "heap-"+label+".pprof")
			if e.heapProfile(heapPath) == nil {
				m2 := e.metrics()
				sum.HeapAfterGCMB = round(m2["go_memstats_heap_inuse_bytes"]/1e6, 1)
				sum.HeapProfile = heapPath
			}
			if !goroutinesBack || !zero {
				path := filepath.Join(b.outDir, "goroutines-"+label+".txt")
				sum.GoroutineTop = e.goroutineDump(path, 3)
				sum.GoroutineDump = path
			}
			break
		}
		sleepCtx(ctx, time.Second)
	}
	code, d := e.stop()
	sum.EdgeExit, sum.EdgeStopS = code, round(d.Seconds(), 2)
	sum.LogWarn, sum.LogError, sum.Crash = logProblems(e.logPath)
	b.em.emit(sum)
	logf("=== %s: highest clean %d/s, first failed %d/s, edge exit %d, drained %v in %.0fs", label, sum.HighestClean, sum.FirstFailed, sum.EdgeExit, sum.Drained, sum.DrainS)
	return ctx.Err()
}

// registerAgents registers the callee from the UAS port (the edge sends
// INVITEs where the REGISTER came from) and every caller from the caller
// port, so that the call ladder runs between registered agents.
// isCalls reports whether ladder is a call ladder (callee, call events).
func isCalls(ladder string) bool {
	return ladder == ladderCalls || ladder == ladderTrunk || ladder == ladderCancel
}

// ratesOf returns the rates of ladder.
func (b *bench) ratesOf(ladder string) []int {
	switch ladder {
	case ladderCalls:
		return b.o.callRates
	case ladderTrunk:
		return b.o.trunkRates
	case ladderCancel:
		return b.o.cancelRates
	}
	return b.o.regRates
}

// registerAgents registers the callee agent and, with callers, the
// calling agents.
func (b *bench) registerAgents(ctx context.Context, e *edge, sum *summary, callers bool) error {
	setups := []struct {
		name, inf string
		port, n   int
		required  bool
	}{
		{"setup-callee", "callee.csv", b.uasPort, 1, true},
		{"setup-callers", "callers.csv", b.uacPort, b.o.agents - 1, false},
	}
	if !callers {
		setups = setups[:1]
	}
	for _, s := range setups {
		var st sippStats
		var err error
		for attempt := 1; attempt <= 3; attempt++ {
			b.seq++
			rate := min(1000, s.n)
			r := &sippRun{name: "register", dir: filepath.Join(b.outDir, "steps", fmt.Sprintf("%02d-%s", b.seq, s.name)), m: s.n}
			r.args = []string{"127.0.0.1:" + strconv.Itoa(b.sipPort), "-sf", filepath.Join(b.scen, "register.xml"),
				"-inf", filepath.Join(b.cfgDir, s.inf), "-set", "domain", domain, "-set", "expires", "3600",
				"-t", "u1", "-i", "127.0.0.1", "-p", strconv.Itoa(s.port),
				"-r", strconv.Itoa(rate), "-m", strconv.Itoa(s.n), "-l", strconv.Itoa(rate),
				"-timeout", strconv.Itoa(s.n/rate+20) + "s", "-timeout_error", "-recv_timeout", "8000",
				"-buff_size", sippBuffer, "-cid_str", fmt.Sprintf("b%d-%%u-%%p@%%s", b.seq)}
			if err = b.startSipp(r); err != nil {
				return err
			}
			r.wait(ctx, time.Duration(s.n/rate+40)*time.Second)
			if err = ctx.Err(); err != nil {
				return err
			}
			st, err = readStat(filepath.Join(r.dir, "register_stat.csv"))
			if err == nil && st.Successful == s.n {
				if !b.o.keep {
					os.RemoveAll(r.dir)
				}
				break
			}
			logf("%s: %d of %d REGISTERs succeeded (%v), see %s", s.name, st.Successful, s.n, err, r.dir)
			if !s.required {
				break
			}
			sleepCtx(ctx, 2*time.Second)
		}
		if s.required && st.Successful != s.n {
			return fmt.Errorf("%s: could not register the callee", s.name)
		}
		if !s.required {
			sum.CallersRegistered = st.Successful
		}
	}
	return nil
}

func (b *bench) step(ctx context.Context, e *edge, ctr *counter, ladder, mode string, rep, idx, rate int) (stepResult, bool, error) {
	b.seq++
	tag := fmt.Sprintf("b%d", b.seq)
	stepS := b.o.stepDur.Seconds()
	m := max(1, int(math.Round(float64(rate)*stepS)))
	dir := filepath.Join(b.outDir, "steps", fmt.Sprintf("%02d-%s-events-%s-%d", b.seq, ladder, mode, rate))
	res := stepResult{Type: "step", Ladder: ladder, Events: mode, Rep: rep, Step: idx, Tag: tag, TargetRate: rate, Calls: m, Dir: dir}
	rttFreq := strconv.Itoa(max(1, min(100, m/100)))
	holdMS := b.o.hold.Milliseconds()
	timeout := int(stepS) + int(holdMS/1000) + 20
	common := []string{"-t", "u1", "-i", "127.0.0.1", "-buff_size", sippBuffer, "-timeout_error", "-recv_timeout", "8000"}

	if e.proc.exited() {
		return res, false, fmt.Errorf("routr is not running (exit code %d); log %s:\n%s", e.proc.exitCode(), e.logPath, tail(e.logPath, 20))
	}
	cpu0, _ := procCPU(e.proc.pid())
	edgeDrops0 := udpDrops(b.sipPort)
	self0 := selfCPU()
	res.LoadStart = loadAvg()
	t0 := time.Now()

	var uas *sippRun
	uac := &sippRun{name: "caller", dir: dir, m: m}
	if ladder == ladderRegister {
		uac.name = "register"
		uac.args = append([]string{"127.0.0.1:" + strconv.Itoa(b.sipPort), "-sf", filepath.Join(b.scen, "register.xml"),
			"-inf", filepath.Join(b.cfgDir, "users.csv"), "-set", "domain", domain, "-set", "expires", "3600",
			"-p", strconv.Itoa(b.regPort), "-r", strconv.Itoa(rate), "-m", strconv.Itoa(m), "-l", strconv.Itoa(max(rate, 100)),
			"-timeout", strconv.Itoa(timeout) + "s", "-cid_str", tag + "-%u-%p@%s", "-trace_rtt", "-rtt_freq", rttFreq,
			"-trace_logs", "-log_file", filepath.Join(dir, "register_ok.log"),
			// no BYE for an aborted REGISTER (sipp's default would send one)
			"-default_behaviors", "all,-bye"}, common...)
	} else {
		uas = &sippRun{name: "callee", dir: dir, m: m}
		callee := "callee.xml"
		if ladder == ladderCancel {
			callee = "callee-cancel.xml"
		}
		uas.args = append([]string{"-sf", filepath.Join(b.scen, callee), "-set", "user", "u000001",
			"-p", strconv.Itoa(b.uasPort), "-m", strconv.Itoa(m), "-timeout", strconv.Itoa(timeout+5) + "s"}, common...)
		from := []string{"-sf", filepath.Join(b.scen, "caller.xml"),
			"-inf", filepath.Join(b.cfgDir, "callers.csv"), "-set", "domain", domain, "-set", "callee", "u000001"}
		switch ladder {
		case ladderTrunk:
			from = []string{"-sf", filepath.Join(b.scen, "trunk.xml"), "-set", "trunkhost", trunkHost, "-set", "number", trunkNumber}
		case ladderCancel:
			from = []string{"-sf", filepath.Join(b.scen, "cancel.xml"), "-set", "trunkhost", trunkHost, "-set", "number", trunkNumber}
		}
		uac.args = append(append([]string{"127.0.0.1:" + strconv.Itoa(b.sipPort)}, from...),
			"-p", strconv.Itoa(b.uacPort), "-r", strconv.Itoa(rate), "-m", strconv.Itoa(m),
			"-l", strconv.Itoa(max(50, rate*int(3+holdMS/1000))), "-d", strconv.FormatInt(holdMS, 10),
			"-timeout", strconv.Itoa(timeout)+"s", "-cid_str", tag+"-%u-%p@%s", "-trace_rtt", "-rtt_freq", rttFreq,
			"-trace_logs", "-log_file", filepath.Join(dir, "caller_ok.log"))
		uac.args = append(uac.args, common...)
		if err := b.startSipp(uas); err != nil {
			return res, false, err
		}
		sleepCtx(ctx, 300*time.Millisecond) // let it bind its port
	}
	if err := b.startSipp(uac); err != nil {
		return res, false, err
	}
	probeStop := make(chan struct{})
	probeDone := make(chan *probeStats, 1)
	go func() {
		st, err := probe(b.sipPort, probeStop)
		if err != nil {
			logf("latency probe: %v", err)
		}
		probeDone <- st
	}()
	if b.o.cpuProfile {
		// The middle of the step: past sipp's start, before its tail.
		secs := max(1, int(stepS)-2)
		go e.cpuProfile(filepath.Join(b.outDir, fmt.Sprintf("cpu-%02d-%s-events-%s-%d.pprof", b.seq, ladder, mode, rate)), secs)
	}
	// sipp's sockets vanish with it: sample their drop counters meanwhile.
	sippPorts := []int{b.regPort}
	if uas != nil {
		sippPorts = []int{b.uacPort, b.uasPort}
	}
	sampled := make(chan int64, 1)
	stopSampling := make(chan struct{})
	go func() {
		var last int64
		for {
			var n int64
			for _, p := range sippPorts {
				n += udpDrops(p)
			}
			last = max(last, n)
			select {
			case <-stopSampling:
				sampled <- last
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
	if !uac.wait(ctx, time.Duration(timeout+15)*time.Second) {
		uac.proc.stop(syscall.SIGKILL, time.Second)
		uac.finished = time.Now()
	}
	if uas != nil && !uas.wait(ctx, 5*time.Second) {
		// Calls that never reached it keep it waiting; stop it softly (sipp
		// writes its statistics on SIGTERM).
		uas.proc.stop(syscall.SIGTERM, 5*time.Second)
		uas.finished = time.Now()
	}
	close(stopSampling)
	res.SippUDPDrops = <-sampled
	close(probeStop)
	res.Probe = <-probeDone
	res.SippWall = round(uac.finished.Sub(uac.started).Seconds(), 2)

	// Events: wait until the edge's queue is empty and nothing new arrives.
	if ctr != nil {
		ts := time.Now()
		for {
			n0, _ := ctr.total(tag)
			sleepCtx(ctx, 500*time.Millisecond)
			n1, _ := ctr.total(tag)
			q := e.metrics()["routr_events_queued"]
			if (n1 == n0 && q == 0) || time.Since(ts) > 20*time.Second || ctx.Err() != nil {
				break
			}
		}
		res.EventsSettle = round(time.Since(ts).Seconds(), 1)
	}
	cpu1, _ := procCPU(e.proc.pid())
	edgeGone := e.proc.exited()
	if edgeGone {
		_, _, crash := logProblems(e.logPath)
		code := e.proc.exitCode()
		if len(crash) == 0 && (code == 0 || code > 128) {
			// SIGTERM gives a clean exit 0, SIGKILL 137: not a crash.
			res.Why = append(res.Why, fmt.Sprintf("routr was stopped from outside during the step (exit code %d, no panic in its log)", code))
		} else {
			res.Why = append(res.Why, fmt.Sprintf("routr exited during the step (code %d): %s", code, strings.Join(crash, " | ")))
		}
	}
	res.EdgeCPU = round(cpu1-cpu0, 2)
	res.EdgeUDPDrops = udpDrops(b.sipPort) - edgeDrops0
	res.BenchCPU = round(selfCPU()-self0, 2)
	if ctr == nil {
		res.BenchCPU = 0
	}
	res.LoadEnd = loadAvg()
	met := e.metrics()
	res.RSSMB = round(met["process_resident_memory_bytes"]/1e6, 1)
	res.PeakRSSMB = round(float64(procStatusKB(e.proc.pid(), "VmHWM"))*1024/1e6, 1)
	res.Goroutines = int(met["go_goroutines"])
	res.EdgeDropped = int(met["routr_events_dropped_total"])
	_ = t0

	// sipp statistics.
	interrupted := false
	st, err := readStat(filepath.Join(dir, uac.name+"_stat.csv"))
	if err != nil {
		res.Why = append(res.Why, "no sipp statistics: "+err.Error())
	}
	res.Created, res.Successful, res.Failed, res.Retrans = st.Created, st.Successful, st.Failed, st.Retrans
	res.Unfinished = max(0, st.Created-st.Successful-st.Failed) + max(0, m-st.Created)
	res.FailedKinds = st.FailedKinds
	res.DeadCallMsgs, res.OutOfCallMsgs = st.DeadCall, st.OutOfCall
	res.SippCPU = uac.proc.cpuSeconds()
	if code := uac.proc.exitCode(); !uac.proc.wasKilled() && code != 255 && st.Created < m {
		interrupted = true
	}
	res.Errors = errorReasons(filepath.Join(dir, uac.name+"_errors.log"), 4)
	if uas != nil {
		us, err := readStat(filepath.Join(dir, "callee_stat.csv"))
		if err != nil {
			res.Why = append(res.Why, "no callee statistics: "+err.Error())
		}
		res.UASIncoming, res.UASSuccessful, res.UASFailed = us.Created, us.Successful, us.Failed
		res.UASUnfinished = max(0, us.Created-us.Successful-us.Failed)
		res.UASKinds = us.FailedKinds
		res.Retrans += us.Retrans
		res.DeadCallMsgs += us.DeadCall
		res.OutOfCallMsgs += us.OutOfCall
		res.SippCPU += uas.proc.cpuSeconds()
		if !uas.proc.wasKilled() && uas.proc.exitCode() != 255 && us.Created < m {
			interrupted = true
		}
		for _, r := range errorReasons(filepath.Join(dir, "callee_errors.log"), 3) {
			res.Errors = append(res.Errors, "callee: "+r)
		}
	}
	res.SippCPU = round(res.SippCPU, 2)
	rtt := readRTT(dir)
	if s, ok := rtt[1]; ok {
		res.RTT = &s
	}
	if s, ok := rtt[2]; ok {
		res.ByeRTT = &s
	}
	res.Achieved = achievedRate(dir, res.Successful, stepS)
	if res.Successful > 0 {
		res.CPUPerOp = round(res.EdgeCPU/float64(res.Successful)*1e6, 1)
	}
	if res.SippWall > 0 {
		res.EdgeUtil = round(res.EdgeCPU/res.SippWall, 2)
	}

	// Events.
	okIDs := readLines(filepath.Join(dir, uac.name+"_ok.log"))
	if okIDs != nil && len(okIDs) != res.Successful {
		res.Why = append(res.Why, fmt.Sprintf("sipp logged %d successful Call-IDs but counted %d (measurement invalid)", len(okIDs), res.Successful))
	}
	if ctr != nil {
		res.EventsByType = map[string]eventStats{}
		types := []string{evRegistered}
		switch {
		case ladder == ladderCancel:
			types = []string{evStarted, evEnded}
		case isCalls(ladder):
			types = []string{evStarted, evAnswered, evEnded}
		}
		for _, t := range types {
			s := ctr.stats(tag, t, okIDs, res.Successful)
			res.EventsByType[t] = s
			if s.Lost > 0 {
				res.Why = append(res.Why, fmt.Sprintf("%d %s lost", s.Lost, t))
			}
			if s.Duplicated > 0 {
				res.Why = append(res.Why, fmt.Sprintf("%d %s duplicated", s.Duplicated, t))
			}
		}
		if o := ctr.otherTypes(tag, types...); len(o) > 0 {
			res.OtherEvents = o
		}
		if isCalls(ladder) {
			res.EndedCauses = ctr.causes(tag)
		}
		if ladder == ladderCancel {
			// A cancelled call was never answered and ends as the
			// caller's CANCEL (docs/events: NORMAL_CLEARING, sipCode 487).
			if n := res.OtherEvents[evAnswered]; n > 0 {
				res.Why = append(res.Why, fmt.Sprintf("%d %s for cancelled calls", n, evAnswered))
			}
			for cause, n := range res.EndedCauses {
				if cause != "NORMAL_CLEARING" {
					res.Why = append(res.Why, fmt.Sprintf("%d %s with hangupCause %s, not NORMAL_CLEARING", n, evEnded, cause))
				}
			}
		}
		if drops, disc := ctr.slowConsumerDrops(); drops > 0 || disc > 0 {
			res.Why = append(res.Why, fmt.Sprintf("subscriber slow-consumer drops %d, disconnects %d (measurement invalid)", drops, disc))
		}
		res.okIDs = okIDs
	}
	if res.EdgeDropped > 0 {
		res.Why = append(res.Why, fmt.Sprintf("edge dropped %d events (routr_events_dropped_total)", res.EdgeDropped))
	}
	if res.Failed > 0 {
		res.Why = append(res.Why, fmt.Sprintf("%d failed calls %v", res.Failed, res.FailedKinds))
	}
	if res.Unfinished > 0 {
		res.Why = append(res.Why, fmt.Sprintf("%d calls unfinished when sipp stopped", res.Unfinished))
	}
	if res.UASFailed > 0 || res.UASUnfinished > 0 {
		res.Why = append(res.Why, fmt.Sprintf("callee: %d failed %v, %d unfinished", res.UASFailed, res.UASKinds, res.UASUnfinished))
	}
	if st.Fatal > 0 {
		res.Why = append(res.Why, fmt.Sprintf("sipp fatal errors: %d", st.Fatal))
	}
	if interrupted {
		res.Why = append(res.Why, "a sipp process was stopped from outside")
	}
	if edgeGone && strings.Contains(strings.Join(res.Why, " "), "stopped from outside during the step") {
		interrupted = true
	}
	res.Clean = len(res.Why) == 0
	if res.Clean && !b.o.keep {
		os.RemoveAll(dir)
		res.Dir = ""
	}
	return res, interrupted, nil
}

// achievedRate is successful calls per second over the send period: from
// the completion times in sipp's rtt file when there are enough samples,
// else successful / step duration.
func achievedRate(dir string, successful int, stepS float64) float64 {
	files, _ := filepath.Glob(filepath.Join(dir, "*_rtt.csv"))
	var first, last float64
	n := 0
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(data), "\n") {
			f := strings.Split(l, ";")
			if len(f) < 3 || strings.TrimSpace(f[2]) != "1" {
				continue
			}
			t, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				continue
			}
			if n == 0 || t < first {
				first = t
			}
			if n == 0 || t > last {
				last = t
			}
			n++
		}
	}
	span := (last - first) / 1000
	if n >= 100 && span > 0.5 {
		return round(float64(n-1)/span, 0)
	}
	return round(float64(successful)/stepS, 0)
}

func (b *bench) ratios() {
	for _, l := range b.o.ladders {
		var on, off []*summary
		for _, label := range b.order {
			sm := b.summaries[label]
			if sm.Ladder != l {
				continue
			}
			if sm.Events == "on" {
				on = append(on, sm)
			} else {
				off = append(off, sm)
			}
		}
		if len(on) == 0 || len(off) == 0 {
			continue
		}
		hc := func(ss []*summary) (all []int, med float64) {
			var v []float64
			for _, s := range ss {
				all = append(all, s.HighestClean)
				v = append(v, float64(s.HighestClean))
			}
			return all, median(v)
		}
		allOn, medOn := hc(on)
		allOff, medOff := hc(off)
		r := map[string]any{"type": "ratio", "ladder": l,
			"highest_clean_on": allOn, "highest_clean_off": allOff,
			"median_highest_clean_on": medOn, "median_highest_clean_off": medOff}
		if medOff > 0 {
			r["clean_rate_ratio_on_off"] = round(medOn/medOff, 2)
		}
		// Edge CPU per operation, median over the clean steps of each
		// rate, where both modes have some.
		perRate := []map[string]any{}
		cpu := func(ss []*summary, rate int) []float64 {
			var v []float64
			for _, s := range ss {
				for _, st := range s.steps {
					if st.TargetRate == rate && st.Clean && st.CPUPerOp > 0 {
						v = append(v, st.CPUPerOp)
					}
				}
			}
			return v
		}
		rates := b.ratesOf(l)
		for _, rate := range rates {
			a, c := cpu(on, rate), cpu(off, rate)
			if len(a) == 0 || len(c) == 0 {
				continue
			}
			perRate = append(perRate, map[string]any{"rate": rate,
				"cpu_us_per_op_on": median(a), "cpu_us_per_op_off": median(c),
				"ratio": round(median(a)/median(c), 2), "samples_on": len(a), "samples_off": len(c)})
		}
		r["cpu_per_op"] = perRate
		b.em.emit(r)
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	w := append([]float64(nil), v...)
	sort.Float64s(w)
	if len(w)%2 == 1 {
		return w[len(w)/2]
	}
	return round((w[len(w)/2-1]+w[len(w)/2])/2, 1)
}

// printTable writes a markdown table of every step to stderr and to
// <out>/table.md.
func (b *bench) printTable() {
	var sb strings.Builder
	sb.WriteString("| ladder | events | target/s | achieved/s | ok | failed | unfinished | retrans | p50 ms | p99 ms | probe p50/p99 µs | edge CPU s | cores | µs/op | RSS MB | events lost/dup | load avg | clean |\n")
	sb.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|\n")
	for _, label := range b.order {
		s := b.summaries[label]
		l, mode := s.Ladder, s.Events
		if b.o.repeat > 1 {
			mode = fmt.Sprintf("%s (%d)", mode, s.Rep)
		}
		{
			for _, r := range s.steps {
				ev := "-"
				if r.EventsByType != nil {
					lost, dup := 0, 0
					for _, e := range r.EventsByType {
						lost += e.Lost
						dup += e.Duplicated
					}
					ev = fmt.Sprintf("%d/%d", lost, dup)
				}
				p50, p99 := "-", "-"
				if r.RTT != nil {
					p50, p99 = strconv.FormatFloat(r.RTT.P50, 'f', -1, 64), strconv.FormatFloat(r.RTT.P99, 'f', -1, 64)
				}
				pr := "-"
				if r.Probe != nil && r.Probe.N > 0 {
					pr = fmt.Sprintf("%.0f / %.0f", r.Probe.P50, r.Probe.P99)
				}
				clean := "yes"
				if !r.Clean {
					clean = "**no**: " + strings.Join(r.Why, "; ")
				}
				fmt.Fprintf(&sb, "| %s | %s | %d | %.0f | %d | %d | %d | %d | %s | %s | %s | %.1f | %.2f | %.0f | %.0f | %s | %s | %s |\n",
					l, mode, r.TargetRate, r.Achieved, r.Successful, r.Failed+r.UASFailed, r.Unfinished+r.UASUnfinished, r.Retrans,
					p50, p99, pr, r.EdgeCPU, r.EdgeUtil, r.CPUPerOp, r.RSSMB, ev, r.LoadEnd, clean)
			}
		}
	}
	fmt.Fprint(os.Stderr, "\n"+sb.String()+"\n")
	_ = os.WriteFile(filepath.Join(b.outDir, "table.md"), []byte(sb.String()), 0o644)
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

func rttOr(s *rttStats, f func(*rttStats) float64) any {
	if s == nil {
		return "-"
	}
	return f(s)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// readLines returns the set of non-empty lines of a file, nil if it
// cannot be read.
func readLines(path string) map[string]bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	out := map[string]bool{}
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out[l] = true
		}
	}
	return out
}
