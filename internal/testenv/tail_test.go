package testenv

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTail(t *testing.T) {
	t.Setenv("LINESERVER_LOGS", t.TempDir())
	t.Run("short output whole", func(t *testing.T) {
		assert.Equal(t, "nginx:\na\nb\n", Tail(t, "nginx", "a\nb\n"))
	})
	t.Run("long output: header, first problem, last lines, all in a file", func(t *testing.T) {
		var b strings.Builder
		for i := 1; i <= 6000; i++ {
			if i == 17 || i == 4000 {
				fmt.Fprintf(&b, "2026/12/02 17:25:26 [error] 1#1: *%d upstream timed out\n", i)
				continue
			}
			fmt.Fprintf(&b, "access %d\n", i)
		}
		got := Tail(t, "nginx", b.String())
		lines := strings.Split(strings.TrimRight(got, "\n"), "\n")
		assert.LessOrEqual(t, len(lines), TailLines+5, "at most TailLines lines and a short header")
		assert.Contains(t, lines[0], "the last 50 of 6000 lines")
		assert.Contains(t, got, "2 lines report a problem; the first:\n  2026/12/02 17:25:26 [error] 1#1: *17 upstream")
		assert.Equal(t, "access 6000", lines[len(lines)-1])
		assert.Equal(t, "access 5951", lines[len(lines)-TailLines])
		_, path, ok := strings.Cut(lines[0], "all of them in ")
		require.True(t, ok, lines[0])
		saved, err := os.ReadFile(strings.TrimSuffix(path, "):"))
		require.NoError(t, err)
		assert.Equal(t, b.String(), string(saved))
	})
}
