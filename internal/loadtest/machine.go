package loadtest

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/prometheus/procfs"
)

// machine describes where a run took place.
type machine struct {
	// CPUs is the number of CPUs the harness may use, CPU their model.
	CPUs int
	CPU  string
	// Memory is the machine's memory in bytes.
	Memory int64
	// Kernel is the Linux release; Go, Wrk and Nginx the tools' versions.
	Kernel, Go, Wrk, Nginx string
	// LoadBefore and LoadAfter are the load averages (1, 5, 15 minutes)
	// when the run started and ended: a busy machine gives lower figures.
	LoadBefore, LoadAfter string
}

// readMachine describes this machine (procfs), asking wrk and nginx at
// the given paths (empty for none) for their versions.
func readMachine(wrk, nginx string) machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), LoadBefore: loadAverage()}
	if fs, err := procfs.NewDefaultFS(); err == nil {
		if cpus, err := fs.CPUInfo(); err == nil && len(cpus) > 0 {
			m.CPU = cpus[0].ModelName
		}
		if mem, err := fs.Meminfo(); err == nil && mem.MemTotalBytes != nil {
			m.Memory = int64(*mem.MemTotalBytes)
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if wrk != "" {
		out, _ := exec.Command(wrk, "-v").CombinedOutput()
		m.Wrk, _, _ = strings.Cut(strings.TrimPrefix(string(out), "wrk "), " ")
	}
	if nginx != "" {
		out, _ := exec.Command(nginx, "-v").CombinedOutput()
		m.Nginx = strings.TrimPrefix(strings.TrimSpace(string(out)), "nginx version: ")
	}
	return m
}

// loadAverage is the 1, 5 and 15 minute load averages, "0.52 0.58 0.59".
func loadAverage() string {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return "unknown"
	}
	l, err := fs.LoadAvg()
	if err != nil {
		return "unknown"
	}
	return fmt.Sprintf("%.2f %.2f %.2f", l.Load1, l.Load5, l.Load15)
}
