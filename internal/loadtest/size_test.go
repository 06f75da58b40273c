package loadtest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"1GB", 1e9}, {"10GB", 10e9}, {"10gb", 10e9}, {"500MB", 500e6}, {"1.5GB", 1.5e9},
		{"64KiB", 64 << 10}, {"1GiB", 1 << 30}, {"4096", 4096}, {"4096B", 4096}, {" 2M ", 2e6}, {"3k", 3000},
	} {
		got, err := ParseSize(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
	for _, bad := range []string{"", "GB", "-1GB", "0", "1XB", "abc", "1e30"} {
		_, err := ParseSize(bad)
		assert.Error(t, err, bad)
	}
}

func TestFormatSize(t *testing.T) {
	for _, tc := range []struct {
		in   int64
		want string
	}{
		{1e9, "1GB"}, {10e9, "10GB"}, {1.5e9, "1.5GB"}, {4e6, "4MB"}, {1023, "1023B"}, {1234567, "1.2MB"}, {5000, "5KB"},
	} {
		assert.Equal(t, tc.want, formatSize(tc.in), tc.in)
	}
	for _, s := range []string{"1GB", "10GB", "4MB", "1.5GB"} {
		n, err := ParseSize(s)
		require.NoError(t, err)
		assert.Equal(t, s, formatSize(n), "round trip")
	}
}

func TestFormatBytes(t *testing.T) {
	assert.Equal(t, "23.5 MiB", formatBytes(23<<20+1<<19))
	assert.Equal(t, "64.0 MiB", formatBytes(64<<20))
	assert.Equal(t, "2.00 GiB", formatBytes(2<<30))
	assert.Equal(t, "12 KiB", formatBytes(12<<10))
	assert.Equal(t, "12 B", formatBytes(12))
}
