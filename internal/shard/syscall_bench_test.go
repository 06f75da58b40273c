package shard

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// BenchmarkSyscalls measures, on this machine, the system calls a line
// costs the shard beside the framework's own work: its two reads, and the
// fstat check of each file the kernel gave no lease on (see guard.go),
// with getpid (the cheapest call) and time.Now (no call at all, through
// the vDSO) for scale. The account of the shard against the ceiling in the
// docs quotes it:
//
//	go test -run '^$' -bench Syscalls ./internal/shard
func BenchmarkSyscalls(b *testing.B) {
	path := filepath.Join(b.TempDir(), "data")
	const size = 64 << 20
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	b.Run("getpid", func(b *testing.B) {
		for b.Loop() {
			syscall.Getpid()
		}
	})
	b.Run("fstat", func(b *testing.B) {
		var st syscall.Stat_t
		for b.Loop() {
			if err := syscall.Fstat(fd, &st); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pread-310B-random", func(b *testing.B) {
		var buf [310]byte
		r := rand.New(rand.NewPCG(1, 2))
		for b.Loop() {
			if _, err := f.ReadAt(buf[:], r.Int64N(size-int64(len(buf)))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("time.Now", func(b *testing.B) {
		for b.Loop() {
			time.Now()
		}
	})
}
