package shard

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lineserver/lineserver/internal/index"
	"github.com/lineserver/lineserver/internal/lineno"
	"github.com/lineserver/lineserver/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readLine reads line n whole, chunk by chunk, with a small buffer so that
// long lines take many chunks.
func readLine(t *testing.T, sh *Shard, n int64, bufSize int) []byte {
	t.Helper()
	n, err := sh.Resolve(n)
	require.NoError(t, err)
	sp, err := sh.Locate(n)
	require.NoError(t, err)
	buf := make([]byte, bufSize)
	var out []byte
	for off := int64(0); off < sp.Len(); {
		c, err := sh.Chunk(buf, sp, off)
		require.NoError(t, err)
		out = append(out, c...)
		off += int64(len(c))
	}
	return out
}

func TestAwkwardFiles(t *testing.T) {
	for name, data := range testenv.Awkward() {
		t.Run(name, func(t *testing.T) {
			path := testenv.WriteIndexed(t, t.TempDir(), "data.txt", data)
			sh, err := Open(Options{DataPath: path, IndexPath: path + "_index.txt"})
			require.NoError(t, err)
			defer sh.Close()
			lines := testenv.Lines(data)
			require.Equal(t, int64(len(lines)), sh.Total())
			var all []byte
			for i, want := range lines {
				for _, size := range []int{2, 7, 64 << 10} {
					if size < 64 && len(want) > 1000 {
						continue
					}
					got := readLine(t, sh, int64(i+1), size)
					require.Equal(t, want, got, "line %d with a %d-byte buffer", i+1, size)
				}
				all = append(all, want...)
				neg := readLine(t, sh, int64(i-len(lines)), 64<<10)
				require.Equal(t, want, neg, "line %d counted from the end", i-len(lines))
			}
			assert.Equal(t, string(data), string(all), "the lines give back the file")
			_, err = sh.Resolve(int64(len(lines) + 1))
			assert.ErrorIs(t, err, lineno.ErrBeyondEnd)
			assert.NoError(t, sh.Ready())
		})
	}
}

// threeShards is a 30-line file and the ways the reference and this
// project lay out a shard of lines 11 to 20.
func threeShards(t *testing.T) (dir string, data []byte, lines [][]byte) {
	dir = t.TempDir()
	data = testenv.Varied(30)
	lines = testenv.Lines(data)
	whole := testenv.WriteIndexed(t, dir, "whole.txt", data)
	idx, err := os.ReadFile(whole + "_index.txt")
	require.NoError(t, err)
	var slice []byte
	for _, l := range lines[10:20] {
		slice = append(slice, l...)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "slice.txt"), slice, 0o644))
	// The reference's slice keeps the whole file's offsets.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "global_index.txt"), idx[10*index.EntrySize:20*index.EntrySize], 0o644))
	rebased, err := index.Of(slice)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "slice.txt_index.txt"), rebased, 0o644))
	return dir, data, lines
}

func TestLayouts(t *testing.T) {
	dir, _, lines := threeShards(t)
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"whole file, a range of it", Options{DataPath: "whole.txt", IndexPath: "whole.txt_index.txt", First: 11, Last: 20, Total: 30}},
		{"reference slice with global offsets", Options{DataPath: "slice.txt", IndexPath: "global_index.txt", First: 11, Last: 20, Total: 30}},
		{"reference slice, last unset", Options{DataPath: "slice.txt", IndexPath: "global_index.txt", First: 11, Total: 30}},
		{"rebased slice", Options{DataPath: "slice.txt", IndexPath: "slice.txt_index.txt", First: 11, Last: 20, Total: 30}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.DataPath = filepath.Join(dir, tc.o.DataPath)
			tc.o.IndexPath = filepath.Join(dir, tc.o.IndexPath)
			sh, err := Open(tc.o)
			require.NoError(t, err)
			defer sh.Close()
			assert.Equal(t, int64(11), sh.First())
			assert.Equal(t, int64(20), sh.Last())
			for n := int64(11); n <= 20; n++ {
				assert.Equal(t, lines[n-1], readLine(t, sh, n, 64<<10), "line %d", n)
			}
			assert.Equal(t, lines[14], readLine(t, sh, -16, 64<<10), "-16 is line 15 of 30")
			for _, n := range []int64{10, 21, 1, 30, -1} {
				_, err := sh.Resolve(n)
				assert.ErrorIs(t, err, lineno.ErrNotHere, "line %d", n)
			}
			_, err = sh.Resolve(31)
			assert.ErrorIs(t, err, lineno.ErrBeyondEnd)
		})
	}
}

func TestOpenRejects(t *testing.T) {
	dir, data, _ := threeShards(t)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, b, 0o644))
		return p
	}
	idx, err := os.ReadFile(filepath.Join(dir, "whole.txt_index.txt"))
	require.NoError(t, err)
	whole := filepath.Join(dir, "whole.txt")
	wholeIdx := whole + "_index.txt"
	other := testenv.WriteIndexed(t, dir, "other.txt", bytes.Repeat([]byte("a much longer line than before\n"), 30))
	grown := write("grown.txt", append(append([]byte(nil), data...), "an extra line\n"...))
	unterminated := testenv.WriteIndexed(t, dir, "unterminated.txt", []byte("a\nb"))
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"missing data", Options{DataPath: filepath.Join(dir, "nope.txt"), IndexPath: wholeIdx}, "FILE_REPOSITORY_FILE_PATH"},
		{"missing index", Options{DataPath: whole, IndexPath: filepath.Join(dir, "nope_index.txt")}, "INDEX_FILE_PATH"},
		{"data is a folder", Options{DataPath: dir, IndexPath: wholeIdx}, "not a regular file"},
		{"truncated index", Options{DataPath: whole, IndexPath: write("trunc_index.txt", idx[:len(idx)-3])}, "not a multiple of 13"},
		{"non-digit entry", Options{DataPath: whole, IndexPath: write("bad_index.txt", append([]byte("00000000x000\n"), idx[13:]...))}, "entry 0"},
		{"index of another file", Options{DataPath: whole, IndexPath: other + "_index.txt"}, "was the index built for this file"},
		{"data grew", Options{DataPath: grown, IndexPath: wholeIdx}, "more lines than index"},
		{"range beyond the index", Options{DataPath: whole, IndexPath: wholeIdx, First: 20, Last: 40}, "too few for lines 20 to 40"},
		{"ambiguous last", Options{DataPath: whole, IndexPath: wholeIdx, First: 11}, "set INDEX_LAST_LINE_NUMBER"},
		{"total below last", Options{DataPath: whole, IndexPath: wholeIdx, Last: 30, Total: 29}, "FILE_TOTAL_LINES=29"},
		{"slice with a range of another size", Options{DataPath: filepath.Join(dir, "slice.txt"), IndexPath: filepath.Join(dir, "global_index.txt"), First: 12, Last: 22, Total: 30}, "set INDEX_LAST_LINE_NUMBER=21"},
		{"slice with a whole index", Options{DataPath: filepath.Join(dir, "slice.txt"), IndexPath: wholeIdx, First: 11, Last: 20, Total: 30}, "does not fit data"},
		{"empty index of a non-empty file", Options{DataPath: whole, IndexPath: write("empty_index.txt", nil)}, "index " + dir + "/empty_index.txt is empty but data"},
		{"file goes on after a last line without newline", Options{DataPath: unterminated, IndexPath: unterminated + "_index.txt", Total: 5}, "does not end with '\\n'"},
		{"range ends at an unterminated line before the end", Options{DataPath: unterminated, IndexPath: unterminated + "_index.txt", Last: 2, Total: 3}, "FILE_TOTAL_LINES=3 says the file goes on"},
		{"entries out of order", Options{DataPath: whole, IndexPath: write("order_index.txt", append(append(append(append([]byte(nil), idx[:13]...), idx[26:39]...), idx[13:26]...), idx[39:]...)), Last: 3, Total: 30}, "was the index built"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(tc.o)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestEmptyFile(t *testing.T) {
	path := testenv.WriteIndexed(t, t.TempDir(), "empty.txt", nil)
	sh, err := Open(Options{DataPath: path, IndexPath: path + "_index.txt"})
	require.NoError(t, err)
	assert.Equal(t, int64(0), sh.Total())
	for _, n := range []int64{1, -1} {
		_, err = sh.Resolve(n)
		assert.ErrorIs(t, err, lineno.ErrBeyondEnd)
	}
}

// TestDamageWhileServing changes the files under an open shard: every read
// after that fails with ErrDamaged or gives the right line, never a wrong one.
func TestDamageWhileServing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, data, index string)
	}{
		{"data truncated", func(t *testing.T, data, _ string) { require.NoError(t, os.Truncate(data, 100)) }},
		{"data rewritten with other lines", func(t *testing.T, data, _ string) {
			f, err := os.OpenFile(data, os.O_WRONLY, 0)
			require.NoError(t, err)
			_, err = f.Write(bytes.Repeat([]byte("xxxxxxxx\n"), 2000))
			require.NoError(t, err)
			require.NoError(t, f.Close())
		}},
		{"newlines removed", func(t *testing.T, data, _ string) {
			b, err := os.ReadFile(data)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(data, bytes.ReplaceAll(b, []byte("\n"), []byte(" ")), 0o644))
		}},
		{"index shifted by one line in place", func(t *testing.T, _, index string) {
			b, err := os.ReadFile(index)
			require.NoError(t, err)
			shifted := append(b[13:], b[len(b)-13:]...)
			require.NoError(t, os.WriteFile(index, shifted, 0o644))
		}},
		{"index rewritten with letters", func(t *testing.T, _, index string) {
			b, err := os.ReadFile(index)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(index, bytes.ReplaceAll(b, []byte("0"), []byte("o")), 0o644))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := testenv.Varied(1000)
			lines := testenv.Lines(data)
			path := testenv.WriteIndexed(t, t.TempDir(), "data.txt", data)
			sh, err := Open(Options{DataPath: path, IndexPath: path + "_index.txt"})
			require.NoError(t, err)
			defer sh.Close()
			tc.damage(t, path, path+"_index.txt")
			buf := make([]byte, 64<<10)
			failed := 0
			for n := int64(1); n <= int64(len(lines)); n++ {
				sp, err := sh.Locate(n)
				if err == nil {
					var c []byte
					c, err = sh.Chunk(buf, sp, 0)
					if err == nil {
						require.Equal(t, string(lines[n-1]), string(c), "line %d: served, so it must be right", n)
					}
				}
				if err != nil {
					require.ErrorIs(t, err, ErrDamaged)
					failed++
				}
			}
			assert.Greater(t, failed, 0)
			assert.ErrorIs(t, sh.Ready(), ErrDamaged, "the shard is no longer ready")
		})
	}
}

func TestLocateDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	path := testenv.WriteIndexed(t, t.TempDir(), "data.txt", testenv.Varied(1000))
	sh, err := Open(Options{DataPath: path, IndexPath: path + "_index.txt"})
	require.NoError(t, err)
	buf := make([]byte, 64<<10)
	allocs := testing.AllocsPerRun(1000, func() {
		sp, _ := sh.Locate(500)
		_, _ = sh.Chunk(buf, sp, 0)
	})
	assert.Zero(t, allocs)
}

func BenchmarkLookup(b *testing.B) {
	for _, lines := range []int{1_000, 1_000_000} {
		b.Run(fmt.Sprintf("lines=%d", lines), func(b *testing.B) {
			path := testenv.WriteIndexed(b, b.TempDir(), "data.txt", []byte(strings.Repeat("a line of about forty bytes of text ...\n", lines)))
			sh, err := Open(Options{DataPath: path, IndexPath: path + "_index.txt"})
			require.NoError(b, err)
			defer sh.Close()
			buf := make([]byte, 64<<10)
			b.ReportAllocs()
			n := int64(1)
			for b.Loop() {
				sp, err := sh.Locate(n)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := sh.Chunk(buf, sp, 0); err != nil {
					b.Fatal(err)
				}
				n = n*7919%int64(lines) + 1
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
		})
	}
}
