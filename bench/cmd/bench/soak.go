package main

// The soak: one long step of the calls ladder (same build, configuration,
// registrations, sipp scenarios, event counting and drain check as the
// ladders) while a sampler reads routr's RSS, goroutines and open file
// descriptors every -sample. What it answers: do they stay flat under a
// steady load, or creep?
//
//	go run ./bench/cmd/bench -soak 10m -soak-rate 1500 -out /tmp/soak

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

type soakOptions struct {
	duration time.Duration
	rate     int
	every    time.Duration
}

// soakSample is one line of <out>/soak.jsonl.
type soakSample struct {
	T            float64 `json:"t_s"` // since routr started
	Time         string  `json:"time"`
	RSSMB        float64 `json:"rss_mb"` // VmRSS
	Goroutines   int     `json:"goroutines"`
	FDs          int     `json:"open_fds"` // entries of /proc/<pid>/fd
	HeapInuseMB  float64 `json:"heap_inuse_mb"`
	CallsActive  int     `json:"calls_active"`
	ServerTx     int     `json:"server_tx_active"`
	ClientTx     int     `json:"client_tx_active"`
	EventsQueued int     `json:"events_queued"`
	Started      int     `json:"calls_started_total"`
	CPUs         float64 `json:"edge_cpu_s"`
	CPUShare     float64 `json:"edge_cores"` // CPU time over the period / its length
	Load         string  `json:"loadavg"`
	// Load is true when calls were started since the previous sample.
	Loaded bool `json:"loaded"`
}

// sampler samples one routr process until it exits.
type sampler struct {
	every time.Duration
	f     *os.File

	mu      sync.Mutex
	samples []soakSample
}

func (s *sampler) watch(e *edge) {
	t0 := time.Now()
	prevStarted := -1
	prevCPU, prevAt := -1.0, t0
	for {
		m := e.metrics()
		pid := e.proc.pid()
		cpu, _ := procCPU(pid)
		fds, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
		smp := soakSample{
			T:            round(time.Since(t0).Seconds(), 1),
			Time:         time.Now().UTC().Format("15:04:05"),
			RSSMB:        round(float64(procStatusKB(pid, "VmRSS"))*1024/1e6, 1),
			Goroutines:   int(m["go_goroutines"]),
			FDs:          len(fds),
			HeapInuseMB:  round(m["go_memstats_heap_inuse_bytes"]/1e6, 1),
			CallsActive:  int(m["routr_calls_active"]),
			ServerTx:     int(m["routr_sip_server_transactions_active"]),
			ClientTx:     int(m["routr_sip_client_transactions_active"]),
			EventsQueued: int(m["routr_events_queued"]),
			Started:      int(m["routr_calls_started_total"]),
			CPUs:         round(cpu, 1),
			Load:         loadAvg(),
		}
		if e.proc.exited() {
			return
		}
		if len(m) == 0 {
			// /metrics did not answer within its timeout (an overloaded
			// machine): no sample this period, try again at the next.
			logf("soak t=%4.0fs: /metrics did not answer", time.Since(t0).Seconds())
		} else {
			smp.Loaded = prevStarted >= 0 && smp.Started > prevStarted
			prevStarted = smp.Started
			if prevCPU >= 0 {
				smp.CPUShare = round((cpu-prevCPU)/time.Since(prevAt).Seconds(), 2)
			}
			prevCPU, prevAt = cpu, time.Now()
			s.record(smp)
		}
		select {
		case <-e.proc.done:
			return
		case <-time.After(s.every):
		}
	}
}

func (s *sampler) record(smp soakSample) {
	s.mu.Lock()
	s.samples = append(s.samples, smp)
	s.mu.Unlock()
	if line, err := json.Marshal(smp); err == nil {
		s.f.Write(append(line, '\n'))
	}
	logf("soak t=%4.0fs rss %6.1f MB, goroutines %5d, fds %4d, heap %6.1f MB, calls up %5d, routr %.2f cores, load %s",
		smp.T, smp.RSSMB, smp.Goroutines, smp.FDs, smp.HeapInuseMB, smp.CallsActive, smp.CPUShare, smp.Load)
}

// trend summarises one sampled quantity.
type trend struct {
	First float64 `json:"first"`
	Last  float64 `json:"last"`
	Min   float64 `json:"min"`
	Max   float64 `json:"max"`
	Mean  float64 `json:"mean"`
	// SlopePerMin is the least-squares slope over the steady samples, in
	// units per minute; DriftPct is that slope over the steady window as
	// a percentage of the mean.
	SlopePerMin float64 `json:"slope_per_min"`
	DriftPct    float64 `json:"drift_pct_of_mean"`
}

func trendOf(ss []soakSample, v func(soakSample) float64) trend {
	if len(ss) == 0 {
		return trend{}
	}
	tr := trend{First: v(ss[0]), Last: v(ss[len(ss)-1]), Min: math.Inf(1), Max: math.Inf(-1)}
	var sx, sy, sxx, sxy float64
	for _, s := range ss {
		x, y := s.T/60, v(s)
		tr.Min, tr.Max = min(tr.Min, y), max(tr.Max, y)
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	n := float64(len(ss))
	tr.Mean = round(sy/n, 1)
	if d := n*sxx - sx*sx; len(ss) > 1 && d != 0 {
		tr.SlopePerMin = round((n*sxy-sx*sy)/d, 2)
		window := (ss[len(ss)-1].T - ss[0].T) / 60
		if tr.Mean != 0 {
			tr.DriftPct = round(tr.SlopePerMin*window/tr.Mean*100, 1)
		}
	}
	return tr
}

// soakWarmup is left out of the trends: the first minute of load fills the
// transaction and call tables up to their steady size.
const soakWarmup = 60 * time.Second

// soak runs the calls ladder as one step of -soak at -soak-rate with the
// sampler on, then summarises the samples.
func (b *bench) soak(ctx context.Context) error {
	defer os.Remove(b.binary)
	path := filepath.Join(b.outDir, "soak.jsonl")
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	smp := &sampler{every: b.o.soak.every, f: f}
	var wg sync.WaitGroup
	b.onEdge = func(e *edge) { wg.Go(func() { smp.watch(e) }) }
	logf("soak: %d calls/s for %s, sampling every %s into %s", b.o.soak.rate, b.o.soak.duration, b.o.soak.every, path)
	err = b.ladder(ctx, ladderCalls, true, 1)
	wg.Wait()
	if err != nil {
		return err
	}

	smp.mu.Lock()
	all := append([]soakSample(nil), smp.samples...)
	smp.mu.Unlock()
	// A sample is under load when calls started both in the period
	// before it and in the one after it: the last sample of the run
	// straddles the end of the load and is left out.
	var loaded, steady []soakSample
	for i, s := range all {
		if s.Loaded && i+1 < len(all) && all[i+1].Loaded {
			loaded = append(loaded, s)
		}
	}
	for _, s := range loaded {
		if s.T-loaded[0].T >= soakWarmup.Seconds() {
			steady = append(steady, s)
		}
	}
	sum := b.summaries[b.order[len(b.order)-1]]
	var step stepResult
	if len(sum.steps) > 0 {
		step = sum.steps[0]
	}
	out := map[string]any{
		"type": "soak", "rate": b.o.soak.rate, "duration_s": b.o.soak.duration.Seconds(), "sample_s": b.o.soak.every.Seconds(),
		"samples": len(all), "samples_loaded": len(loaded), "samples_steady": len(steady), "samples_file": path,
		"calls_ok": step.Successful, "calls_failed": step.Failed + step.UASFailed, "calls_unfinished": step.Unfinished + step.UASUnfinished,
		"retransmissions": step.Retrans, "achieved_rate": step.Achieved, "events": step.EventsByType, "clean": step.Clean, "why": step.Why,
		"edge_exit_code": sum.EdgeExit, "drained": sum.Drained, "goroutines_back": sum.GoroutinesBack,
		"heap_inuse_after_gc_mb": sum.HeapAfterGCMB, "after_drain": sum.AfterDrain,
	}
	trends := map[string]trend{}
	for name, v := range map[string]func(soakSample) float64{
		"rss_mb":        func(s soakSample) float64 { return s.RSSMB },
		"goroutines":    func(s soakSample) float64 { return float64(s.Goroutines) },
		"open_fds":      func(s soakSample) float64 { return float64(s.FDs) },
		"heap_inuse_mb": func(s soakSample) float64 { return s.HeapInuseMB },
		"calls_active":  func(s soakSample) float64 { return float64(s.CallsActive) },
	} {
		trends[name] = trendOf(steady, v)
	}
	out["steady"] = trends
	b.em.emit(out)

	var sb strings.Builder
	fmt.Fprintf(&sb, "soak: %d calls/s for %s: %d ok, %d failed, %d unfinished, %d retransmissions, clean=%v\n",
		b.o.soak.rate, b.o.soak.duration, step.Successful, step.Failed+step.UASFailed, step.Unfinished+step.UASUnfinished, step.Retrans, step.Clean)
	fmt.Fprintf(&sb, "steady window: %d samples (load, first %s left out)\n\n", len(steady), soakWarmup)
	sb.WriteString("| | first | last | min | max | mean | slope /min | drift over the window |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, name := range []string{"rss_mb", "heap_inuse_mb", "goroutines", "open_fds", "calls_active"} {
		t := trends[name]
		fmt.Fprintf(&sb, "| %s | %g | %g | %g | %g | %g | %g | %g%% |\n", name, t.First, t.Last, t.Min, t.Max, t.Mean, t.SlopePerMin, t.DriftPct)
	}
	fmt.Fprint(os.Stderr, "\n"+sb.String()+"\n")
	_ = os.WriteFile(filepath.Join(b.outDir, "soak.md"), []byte(sb.String()), 0o644)
	return nil
}
