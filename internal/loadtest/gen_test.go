package loadtest

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver/internal/index"
)

func generated(t *testing.T, size int64, seed uint64) ([]byte, int64) {
	t.Helper()
	var b bytes.Buffer
	n, err := generate(context.Background(), &b, size, seed, nil)
	require.NoError(t, err)
	return b.Bytes(), n
}

func TestGenerateIsDeterministic(t *testing.T) {
	a, na := generated(t, 3e6, 7)
	b, nb := generated(t, 3e6, 7)
	c, _ := generated(t, 3e6, 8)
	assert.Equal(t, na, nb)
	assert.True(t, bytes.Equal(a, b), "same size and seed, same bytes")
	assert.False(t, bytes.Equal(a, c), "another seed, other bytes")
	// A smaller file of the same seed is the larger one's start, but for
	// its last line, which is cut to fit.
	small, _ := generated(t, 1e6, 7)
	cut := bytes.LastIndexByte(small[:len(small)-1], '\n') + 1
	assert.Equal(t, a[:cut], small[:cut])
}

func TestGenerateSizeAndLines(t *testing.T) {
	for _, size := range []int64{1, 2, 100, 4096, 1e6 + 3} {
		data, lines := generated(t, size, 1)
		require.Len(t, data, int(size))
		assert.Equal(t, byte('\n'), data[len(data)-1], "the last line ends with a newline")
		assert.Equal(t, int64(bytes.Count(data, []byte("\n"))), lines)
	}
}

func TestGenerateVariety(t *testing.T) {
	data, lines := generated(t, 20e6, 1)
	var empty, short, medium, long, veryLong, crlf int
	for line := range bytes.Lines(data) {
		n := len(line) - 1
		switch {
		case n == 0:
			empty++
		case n <= 80:
			short++
		case n <= 400:
			medium++
		case n <= 4000:
			long++
		default:
			veryLong++
		}
		if bytes.HasSuffix(line, []byte("\r\n")) {
			crlf++
		}
	}
	t.Logf("%d lines: %d empty, %d short, %d medium, %d long, %d very long, %d CRLF", lines, empty, short, medium, long, veryLong, crlf)
	for name, n := range map[string]int{"empty": empty, "short": short, "medium": medium, "long": long, "very long (over 4,000 bytes)": veryLong, "CRLF": crlf} {
		assert.Positive(t, n, name)
	}
	assert.Greater(t, short, medium, "short lines are the most common")
	assert.Greater(t, medium, long)
	assert.Greater(t, long, veryLong)
	assert.True(t, bytes.Contains(data, []byte("日本語")), "some UTF-8")
}

func TestEnsureDataBuildsAndReuses(t *testing.T) {
	dir := t.TempDir()
	var stages []string
	d, err := ensureData(context.Background(), dir, 2e6, 3, func(stage string, done, total int64) {
		if len(stages) == 0 || stages[len(stages)-1] != stage {
			stages = append(stages, stage)
		}
	})
	require.NoError(t, err)
	assert.False(t, d.Reused)
	assert.Equal(t, []string{"generate", "index"}, stages)
	data, err := os.ReadFile(d.Data)
	require.NoError(t, err)
	idx, err := os.ReadFile(d.Index)
	require.NoError(t, err)
	want, err := index.Of(data)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, idx), "the index is the project's")
	assert.Equal(t, int64(len(idx)/index.EntrySize), d.Lines)

	again, err := ensureData(context.Background(), dir, 2e6, 3, nil)
	require.NoError(t, err)
	assert.True(t, again.Reused)
	assert.Equal(t, d.Lines, again.Lines)

	other, err := ensureData(context.Background(), dir, 2e6, 4, nil)
	require.NoError(t, err)
	assert.False(t, other.Reused, "another seed is another file")

	// An index cut short is not reused.
	require.NoError(t, os.Truncate(d.Index, 13))
	redone, err := ensureData(context.Background(), dir, 2e6, 3, nil)
	require.NoError(t, err)
	assert.False(t, redone.Reused)
	idx, err = os.ReadFile(d.Index)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, idx))
}

func TestEnsureDataStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	_, err := ensureData(ctx, dir, 5e6, 1, nil)
	require.ErrorIs(t, err, context.Canceled)
	entries, _ := os.ReadDir(dir)
	assert.Empty(t, entries, "nothing half-written is left")
}

func BenchmarkGenerate(b *testing.B) {
	const size = 64 << 20
	b.SetBytes(size)
	for b.Loop() {
		if _, err := generate(context.Background(), discard{}, size, 1, nil); err != nil {
			b.Fatal(err)
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
