package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a child process started by the bench.
type proc struct {
	name   string
	cmd    *exec.Cmd
	done   chan struct{}
	err    error // from Wait, valid after done
	killed bool  // we signalled it
	mu     sync.Mutex
}

// procSet remembers every child so that all of them are stopped on exit,
// on error and on Ctrl-C. Children also get SIGKILL from the kernel if the
// bench dies (Pdeathsig), and run in their own process group.
type procSet struct {
	mu    sync.Mutex
	procs []*proc
}

func (s *procSet) start(name string, cmd *exec.Cmd) (*proc, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if cmd.Stdin == nil {
		devnull, err := os.Open(os.DevNull)
		if err != nil {
			return nil, err
		}
		cmd.Stdin = devnull
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process (not to its group: sipp and routr do not
// fork).
func (p *proc) signal(sig syscall.Signal) {
	if p.exited() {
		return
	}
	p.mu.Lock()
	p.killed = true
	p.mu.Unlock()
	_ = p.cmd.Process.Signal(sig)
}

// stop sends sig, waits up to grace, then SIGKILLs.
func (p *proc) stop(sig syscall.Signal, grace time.Duration) {
	p.signal(sig)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.signal(syscall.SIGKILL)
		<-p.done
	}
}

func (p *proc) wasKilled() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.killed
}

// exitCode is the exit status, or 128+signal, or -1 if still running.
func (p *proc) exitCode() int {
	if !p.exited() {
		return -1
	}
	st := p.cmd.ProcessState
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return st.ExitCode()
}

// cpuSeconds is user+system CPU time of an exited process.
func (p *proc) cpuSeconds() float64 {
	if !p.exited() || p.cmd.ProcessState == nil {
		return 0
	}
	return (p.cmd.ProcessState.UserTime() + p.cmd.ProcessState.SystemTime()).Seconds()
}

func (s *procSet) killAll() {
	s.mu.Lock()
	ps := append([]*proc(nil), s.procs...)
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range ps {
		if p.exited() {
			continue
		}
		wg.Go(func() { p.stop(syscall.SIGTERM, 10*time.Second) })
	}
	wg.Wait()
}

// procCPU reads utime+stime of a running process from /proc/<pid>/stat.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("bad /proc stat")
	}
	f := strings.Fields(s[i+1:])
	// fields after the command: state(3) ... utime(14) stime(15) -> index 11, 12
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("bad /proc stat times")
	}
	return (ut + st) / clkTck, nil
}

// clkTck is USER_HZ, 100 on every Linux this runs on.
const clkTck = 100

// procStatusKB reads a "VmRSS:"-style field (kB) from /proc/<pid>/status.
func procStatusKB(pid int, field string) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// selfCPU is the bench's own CPU time (the NATS subscriber runs here).
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// udpDrops sums the "drops" column of /proc/net/udp for the sockets bound
// to port: datagrams the kernel discarded because the socket's receive
// buffer was full.
func udpDrops(port int) int64 {
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return 0
	}
	var total int64
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 13 {
			continue
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		p, err := strconv.ParseInt(hexPort, 16, 32)
		if err != nil || int(p) != port {
			continue
		}
		d, _ := strconv.ParseInt(f[len(f)-1], 10, 64)
		total += d
	}
	return total
}
