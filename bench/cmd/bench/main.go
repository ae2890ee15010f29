// Command bench measures the routr-go edge on this machine with sipp on the
// same machine: a REGISTER ladder (digest auth, one agent per REGISTER from
// an injection file) and a call ladder (INVITE challenged with 407, 180,
// 200, ACK, hold, BYE, 200 between sipp agents registered with the edge),
// each with events on (embedded NATS and a counting subscriber) and off.
//
//	go run ./bench/cmd/bench            # full run, about 10 minutes
//	go run ./bench/cmd/bench -quick     # smoke test, well under a minute
//
// It prints one JSON line per step on standard output (and into
// <out>/results.jsonl), progress on standard error. See bench/README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	quick       bool
	agents      int
	stepDur     time.Duration
	regRates    []int
	callRates   []int
	trunkRates  []int
	cancelRates []int
	hold        time.Duration
	pause       time.Duration
	natsURL     string
	modes       []string
	ladders     []string
	outDir      string
	keep        bool
	sippPath    string
	retries     int
	drainLimit  time.Duration
	idle        time.Duration
	rev         string
	repeat      int
	traceMsgs   bool
	soak        soakOptions
	cpuProfile  bool
}

func main() {
	os.Exit(run())
}

func run() int {
	var o options
	var regRates, callRates, trunkRates, cancelRates, modes, ladders string
	flag.BoolVar(&o.quick, "quick", false, "smoke test: 200 agents, 3 s steps, low rates")
	flag.IntVar(&o.agents, "agents", 5000, "agents (with credentials) in the generated resources")
	flag.DurationVar(&o.stepDur, "step", 10*time.Second, "duration of each step")
	flag.StringVar(&regRates, "reg-rates", "2000,4000,6000,8000,10000,12000,15000", "REGISTER ladder, per second")
	flag.StringVar(&callRates, "call-rates", "500,1000,2000,3000,4000,5000", "call ladder, new calls per second")
	flag.StringVar(&trunkRates, "trunk-rates", "1000,2000,3000,4000,5000,6000,7500", "unchallenged calls ladder (from a trunk admitted by its ACL), new calls per second")
	flag.StringVar(&cancelRates, "cancel-rates", "1000,2000,3000,4000,5000,6000,7500", "cancelled calls ladder (trunk calls the caller CANCELs while they ring: 100 Trying and the relayed 487 required), new calls per second")
	flag.DurationVar(&o.hold, "hold", time.Second, "call hold time (sipp -d)")
	flag.DurationVar(&o.pause, "pause", 3*time.Second, "quiet time between steps")
	flag.StringVar(&o.natsURL, "nats", natsSeparate, "events on: NATS server routr publishes to: separate (a server in the bench's process, as a deployment runs NATS apart from routr), embedded (routr's EMBEDDED_NATS: the server's CPU counts as routr's), or a URL (e.g. nats://127.0.0.1:4222)")
	flag.StringVar(&modes, "events", "on,off", "event modes to run, in order: on, off")
	flag.StringVar(&ladders, "ladders", "register,calls,trunk,cancel", "ladders to run, in order: register, calls, trunk, cancel")
	flag.StringVar(&o.outDir, "out", "", "directory for results and logs (default: a new temp dir, kept)")
	flag.BoolVar(&o.keep, "keep", false, "keep the sipp working files of every step (else only of unclean steps)")
	flag.StringVar(&o.sippPath, "sipp", "", "sipp binary (default: sipp from PATH)")
	flag.IntVar(&o.retries, "retries", 2, "re-run a step this many times when a load generator is stopped by something else")
	flag.DurationVar(&o.drainLimit, "drain", 40*time.Second, "after a ladder, wait up to this long for transactions and calls to drain (leak check)")
	flag.DurationVar(&o.idle, "idle", 25*time.Second, "after the drain, leave routr idle this long and record its resident size (edge_rss_idle_mb: what it keeps at rest, after its idle trim); 0 skips")
	flag.StringVar(&o.rev, "rev", "", "build this commit (git archive) instead of the working tree, e.g. HEAD")
	flag.IntVar(&o.repeat, "repeat", 1, "run every ladder this many times, modes interleaved; the ratio uses medians")
	flag.BoolVar(&o.traceMsgs, "trace", false, "also write every SIP message sipp sends or receives (-trace_shortmsg) into the step's folder; slows sipp")
	flag.DurationVar(&o.soak.duration, "soak", 0, "soak instead of ladders: calls at -soak-rate for this long, events on, sampling routr (see soak.go), e.g. 10m")
	flag.IntVar(&o.soak.rate, "soak-rate", 1500, "soak: new calls per second (half the measured maximum of 3,000/s)")
	flag.DurationVar(&o.soak.every, "sample", 10*time.Second, "soak: sampling period of routr's RSS, goroutines and open files")
	flag.BoolVar(&o.cpuProfile, "cpuprofile", false, "save a CPU profile of routr for the middle of every step (<out>/cpu-<step>.pprof), then its heap (heap-load-<step>.pprof)")
	flag.Parse()

	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.quick {
		if !set["agents"] {
			o.agents = 200
		}
		if !set["step"] {
			o.stepDur = 3 * time.Second
		}
		if !set["reg-rates"] {
			regRates = "200,500"
		}
		if !set["call-rates"] {
			callRates = "50,100"
		}
		if !set["trunk-rates"] {
			trunkRates = "50,100"
		}
		if !set["cancel-rates"] {
			cancelRates = "50,100"
		}
		if !set["hold"] {
			o.hold = 200 * time.Millisecond
		}
		if !set["pause"] {
			o.pause = time.Second
		}
		if !set["drain"] {
			o.drainLimit = 10 * time.Second
		}
		if !set["idle"] {
			o.idle = 0
		}
	}
	var err error
	if o.regRates, err = parseRates(regRates); err != nil {
		return fail("-reg-rates: %v", err)
	}
	if o.callRates, err = parseRates(callRates); err != nil {
		return fail("-call-rates: %v", err)
	}
	if o.trunkRates, err = parseRates(trunkRates); err != nil {
		return fail("-trunk-rates: %v", err)
	}
	if o.cancelRates, err = parseRates(cancelRates); err != nil {
		return fail("-cancel-rates: %v", err)
	}
	o.modes = splitList(modes)
	o.ladders = splitList(ladders)
	for _, m := range o.modes {
		if m != "on" && m != "off" {
			return fail("-events: %q is not on or off", m)
		}
	}
	for _, l := range o.ladders {
		if l != ladderRegister && l != ladderCalls && l != ladderTrunk && l != ladderCancel {
			return fail("-ladders: %q is not register, calls, trunk or cancel", l)
		}
	}
	if o.repeat < 1 {
		return fail("-repeat: at least 1")
	}
	if o.agents < 3 {
		return fail("-agents: need at least 3")
	}

	if o.soak.duration > 0 {
		if o.soak.rate <= 0 || o.soak.every <= 0 {
			return fail("-soak-rate and -sample must be positive")
		}
		o.ladders, o.modes, o.repeat = []string{ladderCalls}, []string{"on"}, 1
		o.callRates, o.stepDur = []int{o.soak.rate}, o.soak.duration
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	procs := &procSet{}
	defer procs.killAll() // the Go side of "trap EXIT": everything started is stopped

	b, err := newBench(ctx, o, procs)
	if err != nil {
		return fail("%v", err)
	}
	defer b.close()
	runFn := b.run
	if o.soak.duration > 0 {
		runFn = b.soak
	}
	if err := runFn(ctx); err != nil {
		if errors.Is(err, context.Canceled) {
			logf("interrupted; results so far in %s", b.results)
			return 130
		}
		logf("error: %v (results so far in %s)", err, b.results)
		return 1
	}
	logf("results: %s", b.results)
	return 0
}

func parseRates(s string) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad rate %q", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("no rates")
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func fail(format string, a ...any) int {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", a...)
	return 2
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}

// emitter writes result lines to stdout and to results.jsonl.
type emitter struct {
	f *os.File
}

func newEmitter(dir string) (*emitter, string, error) {
	p := filepath.Join(dir, "results.jsonl")
	f, err := os.Create(p)
	if err != nil {
		return nil, "", err
	}
	return &emitter{f: f}, p, nil
}

func (e *emitter) emit(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		logf("encode result: %v", err)
		return
	}
	b = append(b, '\n')
	os.Stdout.Write(b)
	e.f.Write(b)
}
