package loadtest

import (
	"bufio"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestComparer(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		writes     []string
		same       bool
	}{
		{"equal, in pieces", "abcdef", []string{"ab", "cde", "f"}, true},
		{"equal, at once", "abcdef", []string{"abcdef"}, true},
		{"one byte differs", "abcdef", []string{"abc", "xef"}, false},
		{"shorter than want", "abcdef", []string{"abcde"}, false},
		{"longer than want", "abc", []string{"ab", "cd"}, false},
		{"both empty", "", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &comparer{want: bufio.NewReader(strings.NewReader(tc.want)), same: true}
			for _, w := range tc.writes {
				n, err := c.Write([]byte(w))
				require.NoError(t, err)
				assert.Equal(t, len(w), n)
			}
			assert.Equal(t, tc.same, c.end())
		})
	}
}
