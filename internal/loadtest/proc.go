package loadtest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Procs starts processes and stops every one it started: each runs in a
// process group of its own, so that stopping it also stops what it forked
// (nginx's workers), and dies with the harness's thread if the harness is
// killed outright. Its zero value keeps no logs; it is safe for concurrent
// use.
type Procs struct {
	// LogDir, when not empty, receives NAME.log with each process's
	// standard error (and standard output, unless it is discarded).
	LogDir string

	mu    sync.Mutex
	procs []*Proc
}

// Proc is a process started by Procs.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error
}

// Start starts bin with args, with env added to the harness's environment.
// With quiet, its standard output is discarded (nginx writes an access
// log line there for every request).
func (ps *Procs) Start(name, bin string, args, env []string, quiet bool) (*Proc, error) {
	p := &Proc{Name: name, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if ps.LogDir != "" {
		f, err := os.Create(filepath.Join(ps.LogDir, name+".log"))
		if err != nil {
			return nil, err
		}
		p.log = f
		p.cmd.Stderr = f
		if !quiet {
			p.cmd.Stdout = f
		}
	}
	if err := p.cmd.Start(); err != nil {
		if p.log != nil {
			p.log.Close()
		}
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		if p.log != nil {
			p.log.Close()
		}
		close(p.done)
	}()
	ps.mu.Lock()
	ps.procs = append(ps.procs, p)
	ps.mu.Unlock()
	return p, nil
}

// Pid is the process's id, which is also its process group's.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is how the process ended; it is valid once Done is closed.
func (p *Proc) Err() error { return p.err }

// Stop sends SIGTERM to the process's group, waits up to grace for the
// process to exit, then kills the group with SIGKILL and waits for the
// process. Stopping a stopped process does nothing.
func (p *Proc) Stop(grace time.Duration) {
	select {
	case <-p.done:
		killGroup(p.Pid(), syscall.SIGKILL) // what it forked may live on
		return
	default:
	}
	if grace > 0 {
		killGroup(p.Pid(), syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
		}
	}
	killGroup(p.Pid(), syscall.SIGKILL)
	<-p.done
}

func killGroup(pid int, sig syscall.Signal) {
	if err := syscall.Kill(-pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		_ = syscall.Kill(pid, sig)
	}
}

// StopAll stops every process still running, the latest first, each with
// the grace period, and forgets them.
func (ps *Procs) StopAll(grace time.Duration) {
	ps.mu.Lock()
	procs := ps.procs
	ps.procs = nil
	ps.mu.Unlock()
	var wg sync.WaitGroup
	for i := len(procs) - 1; i >= 0; i-- {
		wg.Go(func() { procs[i].Stop(grace) })
	}
	wg.Wait()
}

// Memory is what /proc/PID/status says of a process's memory.
type Memory struct {
	// RSS is the resident set now (VmRSS), HWM its peak so far (VmHWM).
	RSS, HWM int64
	// Anon and File split RSS into anonymous memory and file pages.
	Anon, File int64
}

// readMemory reads the memory of process pid.
func readMemory(pid int) (Memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	defer f.Close()
	return parseStatus(f)
}

func parseStatus(r io.Reader) (Memory, error) {
	var m Memory
	fields := map[string]*int64{"VmRSS:": &m.RSS, "VmHWM:": &m.HWM, "RssAnon:": &m.Anon, "RssFile:": &m.File}
	found := 0
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		if p, ok := fields[f[0]]; ok {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return Memory{}, fmt.Errorf("%s %q: %w", f[0], f[1], err)
			}
			*p = kb << 10
			found++
		}
	}
	if err := sc.Err(); err != nil {
		return Memory{}, err
	}
	if m.RSS == 0 && m.HWM == 0 && found == 0 {
		return Memory{}, errors.New("no VmRSS or VmHWM in the status (a kernel thread or a zombie)")
	}
	return m, nil
}

// sampler reads the memory of some processes every interval and keeps
// the largest of each of its figures for each process.
type sampler struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	peak map[int]Memory
	n    int
}

// Sample starts sampling pids every interval until Stop.
func Sample(pids []int, interval time.Duration) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{}), peak: make(map[int]Memory)}
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			for _, pid := range pids {
				if m, err := readMemory(pid); err == nil {
					s.mu.Lock()
					s.peak[pid] = maxMemory(s.peak[pid], m)
					s.mu.Unlock()
				}
			}
			s.mu.Lock()
			s.n++
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Stop ends the sampling and returns the largest of each figure sampled
// of each process.
func (s *sampler) Stop() map[int]Memory {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

// samples is how many times the processes were read so far.
func (s *sampler) samples() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// maxMemory is the largest of each figure of a and b.
func maxMemory(a, b Memory) Memory {
	return Memory{RSS: max(a.RSS, b.RSS), HWM: max(a.HWM, b.HWM), Anon: max(a.Anon, b.Anon), File: max(a.File, b.File)}
}

// clockTick is the unit of utime and stime in /proc/PID/stat: USER_HZ,
// 100 on every Linux that Go runs on.
const clockTick = 10 * time.Millisecond

// groupCPU is the CPU time (user and system) that the live processes of
// the given process groups have used so far. A group leader's children,
// such as nginx's workers, count with it.
func groupCPU(pgids []int) time.Duration {
	want := map[int]bool{}
	for _, g := range pgids {
		want[g] = true
	}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var total time.Duration
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		if pgrp, cpu, ok := parseStat(string(b)); ok && want[pgrp] {
			total += cpu
		}
	}
	return total
}

// parseStat reads the process group and the CPU time from the text of
// /proc/PID/stat. The command name in parentheses may hold spaces and
// parentheses, so fields are counted from the last ')'.
func parseStat(s string) (pgrp int, cpu time.Duration, ok bool) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	// After ")": state(3) ppid(4) pgrp(5) ... utime(14) stime(15).
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, 0, false
	}
	pgrp, err1 := strconv.Atoi(f[2])
	utime, err2 := strconv.ParseInt(f[11], 10, 64)
	stime, err3 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, false
	}
	return pgrp, time.Duration(utime+stime) * clockTick, true
}
