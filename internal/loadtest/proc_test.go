package loadtest

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gone reports whether no process pid exists (a zombie counts as gone).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err != nil || strings.Contains(string(b), ") Z ")
}

// childOf starts sh that forks a sleeping child and prints its pid, and
// returns the shell and the child's pid.
func childOf(t *testing.T, ps *processes, name string, ignoreTerm bool) (*process, int) {
	t.Helper()
	script := "sleep 60 & echo $!; wait"
	if ignoreTerm {
		script = "trap '' TERM; " + script
	}
	p, err := ps.start(name, "/bin/sh", []string{"-c", script}, nil, false)
	require.NoError(t, err)
	log := filepath.Join(ps.LogDir, name+".log")
	var child int
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(log)
		child, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return child > 0
	}, 5*time.Second, 10*time.Millisecond)
	return p, child
}

func TestStopAllStopsProcessGroups(t *testing.T) {
	ps := &processes{LogDir: t.TempDir()}
	a, childA := childOf(t, ps, "a", false)
	b, childB := childOf(t, ps, "b", true) // ignores SIGTERM: needs SIGKILL
	ps.stopAll(200 * time.Millisecond)
	for _, p := range []*process{a, b} {
		select {
		case <-p.done:
		default:
			t.Fatalf("%s still running", p.Name)
		}
	}
	assert.Eventually(t, func() bool { return gone(childA) && gone(childB) }, 5*time.Second, 10*time.Millisecond,
		"the children in the groups are stopped too")
	ps.stopAll(0) // nothing left: a no-op
}

func TestStopIsIdempotent(t *testing.T) {
	ps := &processes{}
	p, err := ps.start("true", "/bin/true", nil, nil, true)
	require.NoError(t, err)
	<-p.done
	p.stop(time.Second)
	p.stop(time.Second)
	assert.NoError(t, p.err)
}

func TestStartFails(t *testing.T) {
	ps := &processes{LogDir: t.TempDir()}
	_, err := ps.start("missing", "/no/such/binary", nil, nil, false)
	assert.Error(t, err)
}

func TestReadMemoryAndSample(t *testing.T) {
	m, err := readMemory(os.Getpid())
	require.NoError(t, err)
	assert.Positive(t, m.RSS)
	assert.GreaterOrEqual(t, m.HWM, m.RSS)
	s := sample([]int{os.Getpid(), 1 << 30}, time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	peaks := s.end()
	assert.Positive(t, peaks[os.Getpid()].RSS)
	assert.NotContains(t, peaks, 1<<30, "a missing process has no sample")
}

func TestGroupCPU(t *testing.T) {
	ps := &processes{LogDir: t.TempDir()}
	defer ps.stopAll(0)
	p, err := ps.start("spin", "/bin/sh", []string{"-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 60"}, nil, false)
	require.NoError(t, err)
	assert.Eventually(t, func() bool { return groupCPU([]int{p.pid()}) > 0 }, 20*time.Second, 10*time.Millisecond)
	assert.Zero(t, groupCPU([]int{1 << 30}), "no such group")
}

func TestMaxMemory(t *testing.T) {
	a := memory{RSS: 10, HWM: 20, Anon: 3}
	b := memory{RSS: 9, HWM: 25, Anon: 4}
	assert.Equal(t, memory{RSS: 10, HWM: 25, Anon: 4}, maxMemory(a, b), "each figure's largest, not one sample's")
}
