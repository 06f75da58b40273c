package index_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver/internal/index"
	"github.com/lineserver/lineserver/internal/testenv"
)

// chunkings cross chunk borders everywhere: inside lines, right after a
// '\n', between "\r" and "\n", with one worker and with more than cores.
var chunkings = []index.Options{
	{},
	{ChunkSize: 1, Workers: 1},
	{ChunkSize: 2, Workers: 3},
	{ChunkSize: 7, Workers: 2},
	{ChunkSize: 13, Workers: 1},
	{ChunkSize: 4096, Workers: 4},
}

func TestBuildAwkward(t *testing.T) {
	for name, data := range testenv.Awkward() {
		want, err := index.Of(data)
		require.NoError(t, err)
		for _, opt := range chunkings {
			if opt.ChunkSize > 0 && opt.ChunkSize < 13 && len(data) > 1<<20 {
				continue // the 5 MiB line byte by byte is slow and adds nothing
			}
			for kind, r := range readers(data) {
				t.Run(fmt.Sprintf("%s/%s/chunk %d/workers %d", name, kind, opt.ChunkSize, opt.Workers), func(t *testing.T) {
					var got bytes.Buffer
					lines, err := index.Build(context.Background(), r(), &got, opt)
					require.NoError(t, err)
					assert.Equal(t, string(want), got.String())
					assert.Equal(t, int64(len(want)/index.EntrySize), lines)
				})
			}
		}
	}
}

// readers gives data as the readers the commands pass: a whole reader and
// a section of one (a shard's slice).
func readers(data []byte) map[string]func() io.Reader {
	return map[string]func() io.Reader{
		"reader":  func() io.Reader { return bytes.NewReader(data) },
		"section": func() io.Reader { return io.NewSectionReader(bytes.NewReader(data), 0, int64(len(data))) },
	}
}

// TestBuildFromOffset checks that a file is indexed from its current
// offset and read to its end.
func TestBuildFromOffset(t *testing.T) {
	data := testenv.Varied(3000)
	path := filepath.Join(t.TempDir(), "data.txt")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()

	head := len(testenv.Lines(data)[0])
	_, err = f.Seek(int64(head), io.SeekStart)
	require.NoError(t, err)
	want, err := index.Of(data[head:])
	require.NoError(t, err)
	var got bytes.Buffer
	_, err = index.Build(context.Background(), f, &got, index.Options{ChunkSize: 1000})
	require.NoError(t, err)
	assert.Equal(t, string(want), got.String(), "the index of the rest of the file")
	n, err := f.Read(make([]byte, 1))
	assert.Equal(t, 0, n, "the file is read to its end")
	assert.ErrorIs(t, err, io.EOF)
}

// TestBuildReferenceFormat checks the bytes the reference
// create_index_file.py writes for an ASCII file with '\n' endings: the
// offset of each line as "%012d\n".
func TestBuildReferenceFormat(t *testing.T) {
	var data, want strings.Builder
	for i := range 50_000 {
		fmt.Fprintf(&want, "%012d\n", data.Len())
		data.WriteString(strings.Repeat("x", i*7919%301))
		data.WriteString("\n")
	}
	path := filepath.Join(t.TempDir(), "ascii.txt")
	require.NoError(t, os.WriteFile(path, []byte(data.String()), 0o644))
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()

	lines, err := index.BuildFile(context.Background(), path+"_index.txt", f, index.Options{ChunkSize: 64 << 10})
	require.NoError(t, err)
	assert.Equal(t, int64(50_000), lines)
	got, err := os.ReadFile(path + "_index.txt")
	require.NoError(t, err)
	assert.True(t, want.String() == string(got), "the index differs from the reference's bytes")
}

func TestBuildOffsetTooLarge(t *testing.T) {
	// A data file of a terabyte is out of reach; Verify shifts every
	// offset by entry 0, which reaches the limit the same way.
	data := []byte("a\nb\nc\n")
	for _, tc := range []struct {
		name  string
		shift int64
		err   error
	}{
		{"last line at the limit", index.MaxOffset - 4, nil},
		{"last line beyond", index.MaxOffset - 3, index.ErrOffsetTooLarge},
		{"first line at the limit", index.MaxOffset, index.ErrOffsetTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var idx []byte
			for _, off := range []int64{0, 2, 4} {
				idx = fmt.Appendf(idx, "%012d\n", min(tc.shift+off, index.MaxOffset))
			}
			for _, opt := range []index.Options{{}, {ChunkSize: 1}, {ChunkSize: 2}} {
				_, err := index.Verify(context.Background(), bytes.NewReader(data), bytes.NewReader(idx), opt)
				if tc.err == nil {
					assert.NoError(t, err)
					continue
				}
				assert.ErrorIs(t, err, tc.err)
			}
		})
	}
}

func TestBuildFile(t *testing.T) {
	data := testenv.Varied(5000)
	want, err := index.Of(data)
	require.NoError(t, err)
	dir := t.TempDir()
	path := filepath.Join(dir, "data.txt_index.txt")
	require.NoError(t, os.WriteFile(path, []byte("old index\n"), 0o644))

	lines, err := index.BuildFile(context.Background(), path, bytes.NewReader(data), index.Options{})
	require.NoError(t, err)
	assert.Equal(t, int64(5000), lines)
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got))
	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), info.Mode().Perm())
	testenv.DirHolds(t, dir, "data.txt_index.txt")
}

// TestBuildFileFails checks that a failed or interrupted build leaves the
// old index as it was and no temporary file.
func TestBuildFileFails(t *testing.T) {
	data := testenv.Varied(20_000)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		data io.Reader
		want string
	}{
		{"read error", context.Background(), io.MultiReader(bytes.NewReader(data), failingReader{}), "read data: disk on fire"},
		{"interrupted", canceled, bytes.NewReader(data), context.Canceled.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "data.txt_index.txt")
			require.NoError(t, os.WriteFile(path, []byte("old index\n"), 0o644))
			_, err := index.BuildFile(tc.ctx, path, tc.data, index.Options{ChunkSize: 4096})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			got, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, "old index\n", string(got))
			testenv.DirHolds(t, dir, "data.txt_index.txt")
		})
	}
	t.Run("no such folder", func(t *testing.T) {
		_, err := index.BuildFile(context.Background(), filepath.Join(t.TempDir(), "nope", "x_index.txt"), bytes.NewReader(data), index.Options{})
		assert.ErrorIs(t, err, os.ErrNotExist)
	})
}

func TestBuildWriteError(t *testing.T) {
	_, err := index.Build(context.Background(), bytes.NewReader(testenv.Varied(100)), failingWriter{}, index.Options{})
	assert.ErrorContains(t, err, "write index: no space left")
}

func TestBuildProgress(t *testing.T) {
	data := testenv.Varied(10_000)
	var last int64
	calls := 0
	_, err := index.Build(context.Background(), bytes.NewReader(data), io.Discard, index.Options{
		ChunkSize: 4096,
		Progress: func(done int64) {
			assert.Greater(t, done, last)
			last = done
			calls++
		},
	})
	require.NoError(t, err)
	assert.Equal(t, int64(len(data)), last)
	assert.Equal(t, (len(data)+4095)/4096, calls)
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

func FuzzBuild(f *testing.F) {
	for _, data := range testenv.Awkward() {
		if len(data) < 1<<10 {
			f.Add(data, uint16(3))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16) {
		want, err := index.Of(data)
		require.NoError(t, err)
		for _, r := range readers(data) {
			var got bytes.Buffer
			lines, err := index.Build(context.Background(), r(), &got, index.Options{ChunkSize: int(chunk%64) + 1, Workers: 2})
			require.NoError(t, err)
			require.Equal(t, string(want), got.String())
			require.Equal(t, int64(len(want)/index.EntrySize), lines)
		}
	})
}

// benchSizes are the data sizes of the benchmarks.
var benchSizes = []struct {
	name string
	size int
}{{"1MiB", 1 << 20}, {"64MiB", 64 << 20}}

// benchFile writes about size bytes of varied lines to a temporary file.
func benchFile(b *testing.B, size int) string {
	b.Helper()
	block := testenv.Varied(10_000)
	data := bytes.Repeat(block, size/len(block)+1)[:size]
	path := filepath.Join(b.TempDir(), "data.txt")
	require.NoError(b, os.WriteFile(path, data, 0o644))
	return path
}

func BenchmarkBuild(b *testing.B) {
	for _, bs := range benchSizes {
		b.Run(bs.name, func(b *testing.B) {
			path := benchFile(b, bs.size)
			out := filepath.Join(b.TempDir(), "index")
			b.SetBytes(int64(bs.size))
			for b.Loop() {
				f, err := os.Open(path)
				require.NoError(b, err)
				_, err = index.BuildFile(context.Background(), out, f, index.Options{})
				f.Close()
				require.NoError(b, err)
			}
		})
	}
}

// TestBuildShifted: a slice indexed with Shift keeps the whole file's
// offsets, entry for entry the whole file's index of those lines, across
// chunk borders.
func TestBuildShifted(t *testing.T) {
	data := testenv.Varied(3000)
	whole, err := index.Of(data)
	require.NoError(t, err)
	lines := testenv.Lines(data)
	from := int64(0)
	for _, l := range lines[:1000] {
		from += int64(len(l))
	}
	for _, opt := range chunkings {
		t.Run(fmt.Sprintf("chunk %d/workers %d", opt.ChunkSize, opt.Workers), func(t *testing.T) {
			opt.Shift = from
			var got bytes.Buffer
			n, err := index.Build(context.Background(), bytes.NewReader(data[from:]), &got, opt)
			require.NoError(t, err)
			assert.Equal(t, int64(2000), n)
			assert.Equal(t, string(whole[1000*index.EntrySize:]), got.String())
		})
	}
	_, err = index.Build(context.Background(), bytes.NewReader([]byte("a\n")), io.Discard, index.Options{Shift: index.MaxOffset + 1})
	assert.ErrorIs(t, err, index.ErrOffsetTooLarge)
}
