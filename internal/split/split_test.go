package split_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver/internal/index"
	"github.com/lineserver/lineserver/internal/split"
	"github.com/lineserver/lineserver/internal/testenv"
)

// files are the awkward files plus some that make cutting hard.
func files() map[string][]byte {
	m := testenv.Awkward()
	m["varied"] = testenv.Varied(1000)
	m["long lines first"] = []byte(strings.Repeat("x", 300_000) + "\n" + strings.Repeat("y", 200_000) + "\na\nb\nc\nd")
	m["long line last"] = []byte("a\nb\nc\n" + strings.Repeat("z", 300_000) + "\n")
	m["one line"] = []byte("only")
	return m
}

func TestByBytes(t *testing.T) {
	for name, data := range files() {
		lines := testenv.Lines(data)
		for n := 1; n <= 6; n++ {
			t.Run(fmt.Sprintf("%s/%d slices", name, n), func(t *testing.T) {
				cuts, err := split.ByBytes(bytes.NewReader(data), int64(len(data)), n)
				if len(lines) < n && !(len(data) == 0 && n == 1) {
					require.ErrorIs(t, err, split.ErrTooFewLines)
					assert.Contains(t, err.Error(), fmt.Sprintf("%d lines for %d slices", len(lines), n))
					return
				}
				require.NoError(t, err)
				checkCuts(t, data, cuts, n)
			})
		}
	}
}

// checkCuts checks that cuts make n slices that start lines, each of at
// least one line, and that they are balanced when the lines allow it.
func checkCuts(t *testing.T, data []byte, cuts []int64, n int) {
	t.Helper()
	require.Len(t, cuts, n+1)
	assert.Equal(t, int64(0), cuts[0])
	assert.Equal(t, int64(len(data)), cuts[n])
	longest := 0
	for _, l := range testenv.Lines(data) {
		longest = max(longest, len(l))
	}
	for k := 1; k <= n; k++ {
		slice := data[cuts[k-1]:cuts[k]]
		if len(data) > 0 {
			require.NotEmpty(t, slice, "slice %d is empty", k)
		}
		if k < n {
			assert.Equal(t, byte('\n'), data[cuts[k]-1], "cut %d is not at a line start", k)
		}
		if longest < len(data)/n/4 {
			assert.InDelta(t, len(data)/n, len(slice), float64(2*longest), "slice %d is unbalanced", k)
		}
	}
}

func TestByBytesLongLines(t *testing.T) {
	// The even cut points all fall inside the first line; the slices still
	// get one line each.
	data := []byte(strings.Repeat("x", 1_000_000) + "\na\nb\nc\n")
	cuts, err := split.ByBytes(bytes.NewReader(data), int64(len(data)), 4)
	require.NoError(t, err)
	assert.Equal(t, []int64{0, 1_000_001, 1_000_003, 1_000_005, 1_000_007}, cuts)
}

func TestByBytesBadArgs(t *testing.T) {
	_, err := split.ByBytes(bytes.NewReader(nil), 0, 0)
	assert.ErrorContains(t, err, "want at least 1")
	_, err = split.ByBytes(bytes.NewReader(nil), 0, 2)
	assert.ErrorIs(t, err, split.ErrTooFewLines)
	_, err = split.ByBytes(bytes.NewReader([]byte("short")), 100, 2)
	assert.ErrorContains(t, err, "read data")
}

func TestByLines(t *testing.T) {
	for name, data := range files() {
		lines := testenv.Lines(data)
		for _, k := range []int64{1, 2, 3, 7, 1000} {
			t.Run(fmt.Sprintf("%s/%d lines", name, k), func(t *testing.T) {
				cuts, err := split.ByLines(context.Background(), bytes.NewReader(data), k)
				require.NoError(t, err)
				want := int((int64(len(lines)) + k - 1) / k)
				if len(lines) == 0 {
					want = 1
				}
				require.Len(t, cuts, want+1)
				assert.Equal(t, int64(0), cuts[0])
				assert.Equal(t, int64(len(data)), cuts[want])
				for i := 1; i <= want; i++ {
					got := testenv.Lines(data[cuts[i-1]:cuts[i]])
					if i < want {
						assert.Len(t, got, int(k), "slice %d", i)
					} else {
						assert.LessOrEqual(t, len(got), int(k))
					}
				}
			})
		}
	}
	_, err := split.ByLines(context.Background(), bytes.NewReader(nil), 0)
	assert.ErrorContains(t, err, "want at least 1")
}

// TestIndexByBytes checks that the cuts found from the index are the cuts
// ByBytes finds in the data.
func TestIndexByBytes(t *testing.T) {
	for name, data := range files() {
		idx, err := index.Of(data)
		require.NoError(t, err)
		lines := int64(len(idx) / index.EntrySize)
		for n := 1; n <= 6; n++ {
			t.Run(fmt.Sprintf("%s/%d slices", name, n), func(t *testing.T) {
				want, wantErr := split.ByBytes(bytes.NewReader(data), int64(len(data)), n)
				got, err := split.IndexByBytes(bytes.NewReader(idx), lines, int64(len(data)), n)
				if wantErr != nil {
					assert.ErrorIs(t, err, split.ErrTooFewLines)
					return
				}
				require.NoError(t, err)
				require.Len(t, got, n+1)
				for k, line := range got {
					off := int64(len(data))
					if line < lines {
						off, err = index.ParseEntry(idx[line*index.EntrySize : (line+1)*index.EntrySize])
						require.NoError(t, err)
					}
					assert.Equal(t, want[k], off, "cut %d", k)
				}
			})
		}
	}
}

func TestIndexByBytesBadIndex(t *testing.T) {
	_, err := split.IndexByBytes(bytes.NewReader([]byte("000000000000\n00000000x001\n")), 2, 10, 2)
	assert.ErrorContains(t, err, "index entry 1: malformed")
	_, err = split.IndexByBytes(bytes.NewReader([]byte("000000000000\n")), 2, 10, 2)
	assert.ErrorContains(t, err, "read index entry 1")
}

func TestCopy(t *testing.T) {
	data := testenv.Varied(20_000)
	dir := t.TempDir()
	src := filepath.Join(dir, "data.txt")
	require.NoError(t, os.WriteFile(src, data, 0o644))
	f, err := os.Open(src)
	require.NoError(t, err)
	defer f.Close()

	for _, r := range [][2]int64{{0, int64(len(data))}, {100, 5000}, {7, 7}, {int64(len(data)) - 3, int64(len(data))}} {
		t.Run(fmt.Sprintf("%d-%d", r[0], r[1]), func(t *testing.T) {
			out := filepath.Join(dir, "slice.txt")
			var done int64
			require.NoError(t, split.Copy(context.Background(), f, r[0], r[1], out, func(n int64) { done = n }))
			got, err := os.ReadFile(out)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(data[r[0]:r[1]], got))
			assert.Equal(t, r[1]-r[0], done)
			info, err := os.Stat(out)
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o644), info.Mode().Perm())
		})
	}
}

func TestCopyFails(t *testing.T) {
	data := []byte("short file\n")
	dir := t.TempDir()
	src := filepath.Join(dir, "data.txt")
	require.NoError(t, os.WriteFile(src, data, 0o644))
	f, err := os.Open(src)
	require.NoError(t, err)
	defer f.Close()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	for _, tc := range []struct {
		name string
		ctx  context.Context
		path string
		want string
	}{
		{"beyond the end", context.Background(), filepath.Join(dir, "out.txt"), "the file ends at byte 11, before byte 100: was it changed?"},
		{"interrupted", canceled, filepath.Join(dir, "out.txt"), "context canceled"},
		{"no such folder", context.Background(), filepath.Join(dir, "nope", "out.txt"), "no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := split.Copy(tc.ctx, f, 0, 100, tc.path, nil)
			assert.ErrorContains(t, err, tc.want)
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			require.Len(t, entries, 1, "only the source is left")
		})
	}
}
