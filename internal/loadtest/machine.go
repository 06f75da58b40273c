package loadtest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
)

// Machine describes where a run took place.
type Machine struct {
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

// readMachine describes this machine, asking wrk and nginx at the given
// paths (empty for none) for their versions.
func readMachine(wrk, nginx string) Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), LoadBefore: loadAverage()}
	m.CPU = procField("/proc/cpuinfo", "model name")
	if kb, err := strconv.ParseInt(strings.Fields(procField("/proc/meminfo", "MemTotal") + " 0")[0], 10, 64); err == nil {
		m.Memory = kb << 10
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if wrk != "" {
		out, _ := exec.Command(wrk, "-v").CombinedOutput()
		m.Wrk = strings.TrimPrefix(firstWord2(out), "wrk ")
	}
	if nginx != "" {
		out, _ := exec.Command(nginx, "-v").CombinedOutput()
		m.Nginx = strings.TrimPrefix(strings.TrimSpace(string(out)), "nginx version: ")
	}
	return m
}

// firstWord2 is the first two words of out's first line ("wrk 4.1.0").
func firstWord2(out []byte) string {
	line, _, _ := bytes.Cut(out, []byte("\n"))
	f := strings.Fields(string(line))
	return strings.Join(f[:min(2, len(f))], " ")
}

// loadAverage is the 1, 5 and 15 minute load averages, "0.52 0.58 0.59".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// procField returns the value of the first "name: value" line of a /proc
// file.
func procField(path, name string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
		}
	}
	return ""
}

// String is a one-line description: "2 CPUs (AMD EPYC), 23.4 GiB memory,
// Linux 6.1, go1.26.8, wrk 4.1.0, nginx 1.22.1, load 0.50 0.40 0.30 →
// 1.90 1.20 0.60".
func (m Machine) String() string {
	s := fmt.Sprintf("%d CPUs (%s), %s memory, Linux %s, %s", m.CPUs, orUnknown(m.CPU), formatBytes(m.Memory), orUnknown(m.Kernel), m.Go)
	if m.Wrk != "" {
		s += ", wrk " + m.Wrk
	}
	if m.Nginx != "" {
		s += ", " + m.Nginx
	}
	s += ", load average " + m.LoadBefore
	if m.LoadAfter != "" {
		s += " before, " + m.LoadAfter + " after"
	}
	return s
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
