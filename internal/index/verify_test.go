package index_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver/internal/index"
	"github.com/lineserver/lineserver/internal/testenv"
)

func TestVerifyAccepts(t *testing.T) {
	for name, data := range testenv.Awkward() {
		idx, err := index.Of(data)
		require.NoError(t, err)
		for _, opt := range chunkings {
			if opt.ChunkSize > 0 && opt.ChunkSize < 13 && len(data) > 1<<20 {
				continue
			}
			for kind, r := range readers(data) {
				t.Run(fmt.Sprintf("%s/%s/chunk %d/workers %d", name, kind, opt.ChunkSize, opt.Workers), func(t *testing.T) {
					lines, err := index.Verify(context.Background(), r(), bytes.NewReader(idx), opt)
					require.NoError(t, err)
					assert.Equal(t, int64(len(idx)/index.EntrySize), lines)
				})
			}
		}
	}
}

// TestVerifySlice checks a slice of a file against the slice of the whole
// file's index, which keeps global offsets, as the reference's shards do.
func TestVerifySlice(t *testing.T) {
	data := testenv.Varied(300)
	idx, err := index.Of(data)
	require.NoError(t, err)
	lines := testenv.Lines(data)
	from := len(bytes.Join(lines[:100], nil))
	to := len(bytes.Join(lines[:200], nil))
	slice, sliceIdx := data[from:to], idx[100*index.EntrySize:200*index.EntrySize]

	n, err := index.Verify(context.Background(), bytes.NewReader(slice), bytes.NewReader(sliceIdx), index.Options{FirstLine: 101})
	require.NoError(t, err)
	assert.Equal(t, int64(100), n)

	// A slice whose entry 150 is wrong is reported with its global line.
	bad := bytes.Clone(sliceIdx)
	bad[49*index.EntrySize+11]++
	_, err = index.Verify(context.Background(), bytes.NewReader(slice), bytes.NewReader(bad), index.Options{FirstLine: 101})
	assert.ErrorContains(t, err, "line 150: expected offset")
}

func TestVerifyRejects(t *testing.T) {
	data := []byte("first\nsecond\r\nnaïve\n\nlast")
	good := "000000000000\n000000000006\n000000000014\n000000000021\n000000000022\n"
	other, err := index.Of([]byte("first\nsecond\nthird\nfourth\nfifth\n"))
	require.NoError(t, err)
	for _, tc := range []struct {
		name, data, idx string
		line            int64
		want            string
	}{
		{"changed digit", string(data), replace(good, 3*13+10, "3"), 4, "line 4: expected offset 000000000021, found 000000000031"},
		{"changed entry 0", string(data), replace(good, 11, "1"), 2, "line 2: expected offset 000000000007, found 000000000006"},
		{"missing entry", string(data), good[:4*13], 5, "line 5: missing entry: the index ends, but the data has this line at offset 000000000022"},
		{"missing in the middle", string(data), good[:13] + good[2*13:], 2, "line 2: expected offset 000000000006, found 000000000014"},
		{"extra entry", string(data), good + "000000000026\n", 6, `line 6: extra entry "000000000026\n": the data has only 5 lines`},
		{"extra entry for a final newline", "a\nb\n", "000000000000\n000000000002\n000000000004\n", 3, "extra entry"},
		{"truncated entry", string(data), good[:len(good)-1], 5, `line 5: truncated entry "000000000022": the index size is not a multiple of 13`},
		{"truncated entry 0", string(data), "00000", 1, "line 1: truncated entry"},
		{"non-digit", string(data), replace(good, 2*13+5, "x"), 3, `line 3: entry "00000x000014\n" is not 12 digits and a newline`},
		{"carriage return", string(data), replace(good, 12, "\r"), 1, `line 1: entry "000000000000\r" is not 12 digits`},
		{"space in entry 0", string(data), replace(good, 0, " "), 1, "is not 12 digits"},
		{"index of another file", string(data), string(other), 3, "line 3: expected offset 000000000014, found 000000000013"},
		{"empty index", string(data), "", 1, "line 1: missing entry"},
		{"entry for empty data", "", "000000000000\n", 1, "line 1: extra entry"},
		{"garbage for empty data", "", "x", 1, `line 1: extra entry "x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, opt := range []index.Options{{}, {ChunkSize: 3, Workers: 2}} {
				data := io.NewSectionReader(bytes.NewReader([]byte(tc.data)), 0, int64(len(tc.data)))
				_, err := index.Verify(context.Background(), data, bytes.NewReader([]byte(tc.idx)), opt)
				require.ErrorIs(t, err, index.ErrMismatch)
				var m *index.Mismatch
				require.ErrorAs(t, err, &m)
				assert.Equal(t, tc.line, m.Line)
				assert.Contains(t, err.Error(), tc.want)
			}
		})
	}
}

func TestVerifyReadErrors(t *testing.T) {
	data := testenv.Varied(1000)
	idx, err := index.Of(data)
	require.NoError(t, err)
	_, err = index.Verify(context.Background(), failingReader{}, bytes.NewReader(idx), index.Options{})
	assert.ErrorContains(t, err, "read data: disk on fire")
	_, err = index.Verify(context.Background(), bytes.NewReader(data), failingReader{}, index.Options{})
	assert.ErrorContains(t, err, "read index: disk on fire")
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = index.Verify(canceled, bytes.NewReader(data), bytes.NewReader(idx), index.Options{})
	assert.ErrorIs(t, err, context.Canceled)
}

func replace(s string, at int, with string) string { return s[:at] + with + s[at+len(with):] }

// FuzzVerify feeds arbitrary bytes as the index of a small file: Verify
// never panics, accepts exactly the file's index, and reports anything else
// as a Mismatch.
func FuzzVerify(f *testing.F) {
	data := []byte("first\nsecond\r\nnaïve\n\n🙂 last")
	good, err := index.Of(data)
	require.NoError(f, err)
	lastStart, err := index.ParseEntry(good[len(good)-index.EntrySize:])
	require.NoError(f, err)
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(append(bytes.Clone(good), good[:13]...))
	f.Add([]byte{})
	f.Add([]byte("000000000000\n000000000001\n"))
	f.Fuzz(func(t *testing.T, idx []byte) {
		for _, opt := range []index.Options{{}, {ChunkSize: 5, Workers: 2}} {
			lines, err := index.Verify(context.Background(), bytes.NewReader(data), bytes.NewReader(idx), opt)
			if bytes.Equal(idx, good) {
				require.NoError(t, err)
				require.Equal(t, int64(5), lines)
				continue
			}
			// A slice that kept global offsets: every entry shifted alike.
			if shifted, ok := unshift(idx); ok && bytes.Equal(shifted, good) {
				require.NoError(t, err)
				continue
			}
			// An entry 0 so large that the later lines' offsets do not fit.
			if base, perr := index.ParseEntry(idx[:min(len(idx), index.EntrySize)]); perr == nil && base+lastStart > index.MaxOffset {
				require.ErrorIs(t, err, index.ErrOffsetTooLarge)
				continue
			}
			require.ErrorIs(t, err, index.ErrMismatch)
			var m *index.Mismatch
			require.ErrorAs(t, err, &m)
			require.NotEmpty(t, m.Error())
		}
	})
}

// unshift subtracts entry 0 from every entry of idx.
func unshift(idx []byte) ([]byte, bool) {
	if len(idx)%index.EntrySize != 0 || len(idx) == 0 {
		return nil, false
	}
	base, err := index.ParseEntry(idx[:index.EntrySize])
	if err != nil {
		return nil, false
	}
	var out []byte
	for at := 0; at < len(idx); at += index.EntrySize {
		off, err := index.ParseEntry(idx[at : at+index.EntrySize])
		if err != nil || off < base {
			return nil, false
		}
		out, _ = index.AppendEntry(out, off-base)
	}
	return out, true
}

func BenchmarkVerify(b *testing.B) {
	for _, bs := range benchSizes {
		b.Run(bs.name, func(b *testing.B) {
			path := benchFile(b, bs.size)
			f, err := os.Open(path)
			require.NoError(b, err)
			_, err = index.BuildFile(context.Background(), path+"_index.txt", f, index.Options{})
			f.Close()
			require.NoError(b, err)
			b.SetBytes(int64(bs.size))
			for b.Loop() {
				data, err := os.Open(path)
				require.NoError(b, err)
				idx, err := os.Open(filepath.Clean(path + "_index.txt"))
				require.NoError(b, err)
				_, err = index.Verify(context.Background(), data, idx, index.Options{})
				data.Close()
				idx.Close()
				require.NoError(b, err)
			}
		})
	}
}
