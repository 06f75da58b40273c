package shard

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/lineserver/lineserver/internal/index"
	"github.com/lineserver/lineserver/internal/lineno"
	"github.com/lineserver/lineserver/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readLines reads lines first..last whole with a LinesReader, with
// buffers of bufSize data bytes and ientries index entries, and checks
// that each chunk's line number is that of its first byte.
func readLines(t *testing.T, sh *Shard, first, last int64, bufSize, ientries int) ([]byte, error) {
	t.Helper()
	ls, err := sh.LocateLines(first, last)
	if err != nil {
		return nil, err
	}
	require.Equal(t, ls.Count(), last-first+1)
	rd := sh.NewLinesReader(ls, make([]byte, ientries*index.EntrySize))
	buf := make([]byte, bufSize)
	var out []byte
	for {
		c, line, err := rd.Next(buf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return out, err
		}
		want := first + int64(bytes.Count(out, []byte("\n")))
		require.Equal(t, want, line, "the line of the chunk at byte %d of the range", len(out))
		require.NotEmpty(t, c)
		out = append(out, c...)
	}
	require.Equal(t, ls.Len(), int64(len(out)))
	return out, nil
}

func join(lines [][]byte) []byte { return bytes.Join(lines, nil) }

func TestRangesOfAwkwardFiles(t *testing.T) {
	for name, data := range testenv.Awkward() {
		t.Run(name, func(t *testing.T) {
			path := testenv.WriteIndexed(t, t.TempDir(), "data.txt", data)
			sh, err := Open(Options{DataPath: path, IndexPath: path + "_index.txt"})
			require.NoError(t, err)
			defer sh.Close()
			lines := testenv.Lines(data)
			total := int64(len(lines))
			for a := int64(1); a <= total; a++ {
				for b := a; b <= total; b++ {
					for _, size := range [][2]int{{2, 1}, {7, 2}, {64 << 10, 5041}} {
						if size[0] < 64 && len(data) > 1<<20 {
							continue
						}
						first, last, end, err := sh.ResolveRange(a, b)
						require.NoError(t, err)
						require.Equal(t, [3]int64{a, b, b}, [3]int64{first, last, end})
						got, err := readLines(t, sh, first, last, size[0], size[1])
						require.NoError(t, err, "lines %d..%d", a, b)
						require.Equal(t, join(lines[a-1:b]), got, "lines %d..%d with buffers %v", a, b, size)
					}
				}
			}
			if total == 0 {
				_, _, _, err := sh.ResolveRange(1, -1)
				require.ErrorIs(t, err, lineno.ErrBeyondEnd)
				return
			}
			first, last, _, err := sh.ResolveRange(1, -1)
			require.NoError(t, err)
			got, err := readLines(t, sh, first, last, 64<<10, 5041)
			require.NoError(t, err)
			assert.Equal(t, data, got, "1..-1 is the whole file")
		})
	}
}

func TestRangeResolve(t *testing.T) {
	dir, _, lines := threeShards(t)
	open := func(o Options) *Shard {
		o.DataPath, o.IndexPath = filepath.Join(dir, o.DataPath), filepath.Join(dir, o.IndexPath)
		sh, err := Open(o)
		require.NoError(t, err)
		t.Cleanup(func() { sh.Close() })
		return sh
	}
	known := open(Options{DataPath: "slice.txt", IndexPath: "slice.txt_index.txt", First: 11, Last: 20, Total: 30})
	unknown := open(Options{DataPath: "slice.txt", IndexPath: "global_index.txt", First: 11, NoManifest: true})
	require.False(t, unknown.TotalKnown())
	for _, tc := range []struct {
		sh               *Shard
		a, b             int64
		first, last, end int64
		err              error
	}{
		{known, 11, 20, 11, 20, 20, nil},
		{known, 11, 11, 11, 11, 11, nil},
		{known, 15, 25, 15, 20, 25, nil},
		{known, 20, -1, 20, 20, 30, nil},
		{known, -20, -11, 11, 20, 20, nil},
		{known, -16, 16, 15, 16, 16, nil},
		{known, 10, 15, 0, 0, 0, lineno.ErrNotHere},
		{known, 21, 25, 0, 0, 0, lineno.ErrNotHere},
		{known, 11, 31, 0, 0, 0, lineno.ErrBeyondEnd},
		{known, 31, 32, 0, 0, 0, lineno.ErrBeyondEnd},
		{known, -31, 15, 0, 0, 0, lineno.ErrBeyondEnd},
		{known, 15, 12, 0, 0, 0, lineno.ErrReversed},
		{known, 15, -20, 0, 0, 0, lineno.ErrReversed},
		{unknown, 11, 20, 11, 20, 20, nil},
		{unknown, 12, 13, 12, 13, 13, nil},
		{unknown, 15, 21, 0, 0, 0, lineno.ErrNotHere},
		{unknown, 15, -1, 0, 0, 0, lineno.ErrNotHere},
		{unknown, -1, -1, 0, 0, 0, lineno.ErrNotHere},
		{unknown, 15, 12, 0, 0, 0, lineno.ErrReversed},
	} {
		name := fmt.Sprintf("%d..%d total known %v", tc.a, tc.b, tc.sh.TotalKnown())
		first, last, end, err := tc.sh.ResolveRange(tc.a, tc.b)
		if tc.err != nil {
			require.ErrorIs(t, err, tc.err, name)
			continue
		}
		require.NoError(t, err, name)
		require.Equal(t, [3]int64{tc.first, tc.last, tc.end}, [3]int64{first, last, end}, name)
		got, err := readLines(t, tc.sh, first, last, 5, 3)
		require.NoError(t, err, name)
		require.Equal(t, join(lines[first-1:last]), got, name)
	}
}

func TestRandomRanges(t *testing.T) {
	data := testenv.Varied(3000)
	lines := testenv.Lines(data)
	path := testenv.WriteIndexed(t, t.TempDir(), "data.txt", data)
	sh, err := Open(Options{DataPath: path, IndexPath: path + "_index.txt", First: 1001, Last: 2000})
	require.NoError(t, err)
	defer sh.Close()
	rng := rand.New(rand.NewPCG(15, 15))
	for range 200 {
		a := 1001 + rng.Int64N(1000)
		b := a + rng.Int64N(2001-a)
		got, err := readLines(t, sh, a, b, 1+rng.IntN(4096), 1+rng.IntN(300))
		require.NoError(t, err)
		require.Equal(t, join(lines[a-1:b]), got, "lines %d..%d", a, b)
	}
}

// TestRangeChecksEveryBoundary damages one index entry in the middle of
// the file, where Open's sample does not look, to a line start that is not
// one: single lines elsewhere are served, a range across it is refused.
func TestRangeChecksEveryBoundary(t *testing.T) {
	for _, tc := range []struct {
		name  string
		shift func(start int64) int64
	}{
		{"a boundary moved forward", func(start int64) int64 { return start + 2 }},
		{"a boundary moved back", func(start int64) int64 { return start - 2 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			for i := range 1000 {
				fmt.Fprintf(&b, "line %04d\n", i+1)
			}
			data := b.Bytes()
			path := testenv.WriteIndexed(t, t.TempDir(), "data.txt", data)
			idx, err := os.ReadFile(path + "_index.txt")
			require.NoError(t, err)
			const n = 500 // entry 499: not among the 64 Open samples
			e := idx[(n-1)*index.EntrySize : n*index.EntrySize]
			start, err := index.ParseEntry(e)
			require.NoError(t, err)
			copy(e, fmt.Sprintf("%012d", tc.shift(start)))
			require.NoError(t, os.WriteFile(path+"_index.txt", idx, 0o644))
			sh, err := Open(Options{DataPath: path, IndexPath: path + "_index.txt"})
			require.NoError(t, err, "Open samples the index; the damaged entry is not in its sample")
			defer sh.Close()
			got, err := readLines(t, sh, 1, 100, 64<<10, 5041)
			require.NoError(t, err)
			require.Equal(t, data[:100*10], got)
			for _, size := range [][2]int{{64 << 10, 5041}, {3, 1}, {10, 1}, {11, 2}} {
				_, err = readLines(t, sh, 490, 510, size[0], size[1])
				require.ErrorIs(t, err, ErrDamaged, "buffers %v", size)
			}
		})
	}
}

func BenchmarkRange(b *testing.B) {
	data := testenv.Varied(20000)
	path := testenv.WriteIndexed(b, b.TempDir(), "data.txt", data)
	sh, err := Open(Options{DataPath: path, IndexPath: path + "_index.txt"})
	require.NoError(b, err)
	defer sh.Close()
	buf, ibuf := make([]byte, 64<<10), make([]byte, 64<<10)
	b.Run("1000 lines", func(b *testing.B) {
		lines := 0
		for i := 0; b.Loop(); i++ {
			a := int64(1 + (i*1000)%19000)
			ls, err := sh.LocateLines(a, a+999)
			if err != nil {
				b.Fatal(err)
			}
			rd := sh.NewLinesReader(ls, ibuf)
			for {
				if _, _, err := rd.Next(buf); err != nil {
					if errors.Is(err, io.EOF) {
						break
					}
					b.Fatal(err)
				}
			}
			lines += 1000
		}
		b.ReportMetric(float64(lines)/b.Elapsed().Seconds(), "lines/s")
	})
	b.Run("single lines", func(b *testing.B) {
		lines := 0
		for i := 0; b.Loop(); i++ {
			sp, err := sh.Locate(int64(1 + i%20000))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := sh.Chunk(buf, sp, 0); err != nil {
				b.Fatal(err)
			}
			lines++
		}
		b.ReportMetric(float64(lines)/b.Elapsed().Seconds(), "lines/s")
	})
}
