package loadtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
)

// processes starts processes and stops every one it started: each runs in a
// process group of its own, so that stopping it also stops what it forked
// (nginx's workers), and dies with the harness's thread if the harness is
// killed outright. Its zero value keeps no logs; it is safe for concurrent
// use.
type processes struct {
	// LogDir, when not empty, receives NAME.log with each process's
	// standard error (and standard output, unless it is discarded).
	LogDir string

	mu    sync.Mutex
	procs []*process
}

// process is one started by processes.
type process struct {
	Name string
	cmd  *exec.Cmd
	// done is closed when the process has exited; err is then how it
	// ended.
	done chan struct{}
	err  error
}

// start starts bin with args, with env added to the harness's environment.
// With quiet, its standard output is discarded (nginx writes an access
// log line there for every request).
func (ps *processes) start(name, bin string, args, env []string, quiet bool) (*process, error) {
	p := &process{Name: name, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if ps.LogDir != "" {
		// The process writes to the file itself: ours is closed once it
		// has started.
		f, err := os.Create(filepath.Join(ps.LogDir, name+".log"))
		if err != nil {
			return nil, err
		}
		defer f.Close()
		p.cmd.Stderr = f
		if !quiet {
			p.cmd.Stdout = f
		}
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	ps.mu.Lock()
	ps.procs = append(ps.procs, p)
	ps.mu.Unlock()
	return p, nil
}

// pid is the process's id, which is also its process group's.
func (p *process) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM to the process's group, waits up to grace for the
// process to exit, then kills the group with SIGKILL and waits for the
// process. Stopping a stopped process does nothing.
func (p *process) stop(grace time.Duration) {
	select {
	case <-p.done:
		killGroup(p.pid(), syscall.SIGKILL) // what it forked may live on
		return
	default:
	}
	if grace > 0 {
		killGroup(p.pid(), syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
		}
	}
	killGroup(p.pid(), syscall.SIGKILL)
	<-p.done
}

func killGroup(pid int, sig syscall.Signal) {
	if err := syscall.Kill(-pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		_ = syscall.Kill(pid, sig)
	}
}

// stopAll stops every process still running, the latest first, each with
// the grace period, and forgets them.
func (ps *processes) stopAll(grace time.Duration) {
	ps.mu.Lock()
	procs := ps.procs
	ps.procs = nil
	ps.mu.Unlock()
	var wg sync.WaitGroup
	for i := len(procs) - 1; i >= 0; i-- {
		wg.Go(func() { procs[i].stop(grace) })
	}
	wg.Wait()
}

// memory is what /proc/PID/status says of a process's memory.
type memory struct {
	// RSS is the resident set now (VmRSS), HWM its peak so far (VmHWM),
	// Anon the anonymous part of RSS (RssAnon): heap and stacks, not the
	// pages of files it maps.
	RSS, HWM, Anon int64
}

// readMemory reads the memory of process pid (procfs).
func readMemory(pid int) (memory, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return memory{}, err
	}
	s, err := p.NewStatus()
	if err != nil {
		return memory{}, err
	}
	return memory{RSS: int64(s.VmRSS), HWM: int64(s.VmHWM), Anon: int64(s.RssAnon)}, nil
}

// sampler reads the memory of some processes every interval and keeps
// the largest of each of its figures for each process. Its goroutine
// alone touches peak and n until end returns.
type sampler struct {
	stop, done chan struct{}
	peak       map[int]memory
	// n is how many times the processes were read.
	n int
}

// sample starts sampling pids every interval until end.
func sample(pids []int, interval time.Duration) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{}), peak: make(map[int]memory)}
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			for _, pid := range pids {
				if m, err := readMemory(pid); err == nil {
					s.peak[pid] = maxMemory(s.peak[pid], m)
				}
			}
			s.n++
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// end ends the sampling and returns the largest of each figure sampled
// of each process.
func (s *sampler) end() map[int]memory {
	close(s.stop)
	<-s.done
	return s.peak
}

// maxMemory is the largest of each figure of a and b.
func maxMemory(a, b memory) memory {
	return memory{RSS: max(a.RSS, b.RSS), HWM: max(a.HWM, b.HWM), Anon: max(a.Anon, b.Anon)}
}

// groupCPU is the CPU time (user and system) that the live processes of
// the given process groups have used so far (procfs). A group leader's
// children, such as nginx's workers, count with it.
func groupCPU(pgids []int) time.Duration {
	procs, _ := procfs.AllProcs()
	var seconds float64
	for _, p := range procs {
		if s, err := p.Stat(); err == nil && slices.Contains(pgids, s.PGRP) {
			seconds += s.CPUTime()
		}
	}
	return time.Duration(seconds * float64(time.Second))
}
