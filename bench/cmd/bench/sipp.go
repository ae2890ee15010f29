package main

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// sippRun describes one sipp process.
type sippRun struct {
	name     string // caller, callee, register
	dir      string // working directory: stat, rtt and error files land here
	args     []string
	m        int // -m
	proc     *proc
	started  time.Time
	finished time.Time
}

func (b *bench) startSipp(r *sippRun) error {
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return err
	}
	args := append([]string{}, r.args...)
	args = append(args,
		"-nostdin",
		"-trace_stat", "-stf", filepath.Join(r.dir, r.name+"_stat.csv"), "-fd", "1",
		"-trace_err", "-error_file", filepath.Join(r.dir, r.name+"_errors.log"),
		"-trace_screen", "-screen_file", filepath.Join(r.dir, r.name+"_screen.log"),
	)
	if b.o.traceMsgs {
		args = append(args, "-trace_shortmsg", "-shortmessage_file", filepath.Join(r.dir, r.name+"_messages.csv"))
	}
	cmd := exec.Command(b.sipp, args...)
	cmd.Dir = r.dir
	out, err := os.Create(filepath.Join(r.dir, r.name+"_stdout.log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := os.WriteFile(filepath.Join(r.dir, r.name+"_cmd.txt"), []byte(b.sipp+" "+strings.Join(args, " ")+"\n"), 0o644); err != nil {
		return err
	}
	r.started = time.Now()
	r.proc, err = b.procs.start(r.name, cmd)
	if err != nil {
		out.Close()
		return err
	}
	go func() { <-r.proc.done; out.Close() }()
	return nil
}

func (r *sippRun) wait(ctx context.Context, timeout time.Duration) bool {
	select {
	case <-r.proc.done:
		r.finished = time.Now()
		return true
	case <-ctx.Done():
		return false
	case <-time.After(timeout):
		return false
	}
}

// sippStats is what we read from the last line of a -trace_stat file.
type sippStats struct {
	Created       int
	Successful    int
	Failed        int
	Retrans       int
	OutOfCall     int
	DeadCall      int
	Fatal         int
	Warnings      int
	FailedKinds   map[string]int
	ElapsedC      float64 // seconds
	AllCreatedAt  float64 // elapsed seconds at the first line where every call was created
	PeakPerPeriod int
}

// readStat parses sipp's ';'-separated statistics file (-trace_stat
// -fd 1): one header line, then a line per second, cumulative columns
// marked (C).
func readStat(path string) (sippStats, error) {
	var s sippStats
	f, err := os.Open(path)
	if err != nil {
		return s, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var header []string
	var rows [][]string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		fields := strings.Split(line, ";")
		if header == nil {
			header = fields
			continue
		}
		rows = append(rows, fields)
	}
	if err := sc.Err(); err != nil {
		return s, err
	}
	if header == nil || len(rows) == 0 {
		return s, fmt.Errorf("%s: no statistics", path)
	}
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	get := func(row []string, name string) int {
		i, ok := col[name]
		if !ok || i >= len(row) {
			return 0
		}
		n, _ := strconv.Atoi(strings.TrimSpace(row[i]))
		return n
	}
	last := rows[len(rows)-1]
	created := get(last, "OutgoingCall(C)") + get(last, "IncomingCall(C)")
	s = sippStats{
		Created:     created,
		Successful:  get(last, "SuccessfulCall(C)"),
		Failed:      get(last, "FailedCall(C)"),
		Retrans:     get(last, "Retransmissions(C)"),
		OutOfCall:   get(last, "OutOfCallMsgs(C)"),
		DeadCall:    get(last, "DeadCallMsgs(C)"),
		Fatal:       get(last, "FatalErrors(C)"),
		Warnings:    get(last, "Warnings(C)"),
		FailedKinds: map[string]int{},
	}
	for name := range col {
		if strings.HasPrefix(name, "Failed") && strings.HasSuffix(name, "(C)") && name != "FailedCall(C)" {
			if n := get(last, name); n > 0 {
				s.FailedKinds[strings.TrimSuffix(strings.TrimPrefix(name, "Failed"), "(C)")] = n
			}
		}
	}
	if i, ok := col["ElapsedTime(C)"]; ok && i < len(last) {
		s.ElapsedC = parseSippDuration(last[i])
	}
	for _, row := range rows {
		c := get(row, "OutgoingCall(C)") + get(row, "IncomingCall(C)")
		if p := get(row, "OutgoingCall(P)") + get(row, "IncomingCall(P)"); p > s.PeakPerPeriod {
			s.PeakPerPeriod = p
		}
		if c >= created && s.AllCreatedAt == 0 {
			if i, ok := col["ElapsedTime(C)"]; ok && i < len(row) {
				s.AllCreatedAt = parseSippDuration(row[i])
			}
		}
	}
	return s, nil
}

// parseSippDuration reads "hh:mm:ss" or "hh:mm:ss:uuuuuu".
func parseSippDuration(v string) float64 {
	p := strings.Split(strings.TrimSpace(v), ":")
	if len(p) < 3 {
		return 0
	}
	h, _ := strconv.Atoi(p[0])
	m, _ := strconv.Atoi(p[1])
	sec, _ := strconv.Atoi(p[2])
	d := float64(h*3600 + m*60 + sec)
	if len(p) > 3 {
		us, _ := strconv.Atoi(p[3])
		d += float64(us) / 1e6
	}
	return d
}

// rttStats are percentiles of sipp response times (-trace_rtt), in ms.
type rttStats struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// readRTT reads every <scenario>_<pid>_rtt.csv in dir: lines
// "date_ms;response_time_ms;rtd_no". It returns the stats per rtd number.
func readRTT(dir string) map[int]rttStats {
	files, _ := filepath.Glob(filepath.Join(dir, "*_rtt.csv"))
	samples := map[int][]float64{}
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Split(sc.Text(), ";")
			if len(fs) < 3 {
				continue
			}
			v, err1 := strconv.ParseFloat(strings.TrimSpace(fs[1]), 64)
			n, err2 := strconv.Atoi(strings.TrimSpace(fs[2]))
			if err1 != nil || err2 != nil {
				continue // header
			}
			samples[n] = append(samples[n], v)
		}
		f.Close()
	}
	out := map[int]rttStats{}
	for n, v := range samples {
		out[n] = percentiles(v)
	}
	return out
}

func percentiles(v []float64) rttStats {
	if len(v) == 0 {
		return rttStats{}
	}
	sort.Float64s(v)
	q := func(p float64) float64 {
		// nearest rank
		i := int(math.Ceil(p*float64(len(v)))) - 1
		i = max(0, min(i, len(v)-1))
		return v[i]
	}
	return rttStats{N: len(v), P50: q(0.50), P90: q(0.90), P99: q(0.99), Max: v[len(v)-1]}
}

var (
	reCallID  = regexp.MustCompile(`'[^']*@[^']*'|b[0-9a-z]+-[0-9]+-[0-9]+@[0-9.]+`)
	reNumbers = regexp.MustCompile(`\b[0-9]{2,}\b`)
	reStamp   = regexp.MustCompile(`^\d{4}-\d\d-\d\d\s+\d\d:\d\d:\d\d\.\d+\s+\d+\.\d+:\s*`)
)

// errorReasons groups the lines of a sipp error file by what happened,
// most frequent first.
func errorReasons(path string, top int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	counts := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		// sipp glues some messages to the next timestamp; split there.
		for _, part := range splitStamps(line) {
			if !reStamp.MatchString(part) {
				continue
			}
			msg := reStamp.ReplaceAllString(part, "")
			msg = reCallID.ReplaceAllString(msg, "<call>")
			msg = reNumbers.ReplaceAllString(msg, "N")
			msg = strings.TrimRight(msg, ": ")
			if len(msg) > 160 {
				msg = msg[:160]
			}
			counts[msg]++
		}
	}
	type kv struct {
		k string
		n int
	}
	var list []kv
	for k, n := range counts {
		list = append(list, kv{k, n})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].n > list[j].n || list[i].n == list[j].n && list[i].k < list[j].k })
	var out []string
	for i, e := range list {
		if i == top {
			break
		}
		out = append(out, fmt.Sprintf("%d× %s", e.n, e.k))
	}
	return out
}

var reStampAnywhere = regexp.MustCompile(`\d{4}-\d\d-\d\d\s+\d\d:\d\d:\d\d\.\d+\s+\d+\.\d+:`)

func splitStamps(line string) []string {
	idx := reStampAnywhere.FindAllStringIndex(line, -1)
	if len(idx) == 0 {
		return nil
	}
	var out []string
	for i, loc := range idx {
		end := len(line)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		out = append(out, line[loc[0]:end])
	}
	return out
}
