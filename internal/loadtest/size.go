package loadtest

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dustin/go-humanize"
)

// ParseSize parses a size such as "1GB" (10^9 bytes), "10GB", "500MB",
// "64KiB" (2^16 bytes), "1.5GB" or "4096" (bytes), as go-humanize does:
// units are case insensitive. The size must be positive and at most
// 2^50 bytes.
func ParseSize(s string) (int64, error) {
	n, err := humanize.ParseBytes(strings.TrimSpace(s))
	if err != nil || n < 1 || n > 1<<50 {
		return 0, fmt.Errorf("size %q: want a positive number of bytes such as 1GB, 500MB or 64KiB", s)
	}
	return int64(n), nil
}

// formatSize writes n in the largest decimal unit that keeps it short and
// exact to a tenth: 1000000000 is "1GB", 1500000 is "1.5MB", 1023 is
// "1023B".
func formatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		bytes  int64
	}{{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}} {
		if n >= u.bytes && (n*10)%u.bytes == 0 {
			return strconv.FormatFloat(float64(n)/float64(u.bytes), 'f', -1, 64) + u.suffix
		}
	}
	if n >= 1e6 {
		return strconv.FormatFloat(float64(n)/1e6, 'f', 1, 64) + "MB"
	}
	return strconv.FormatInt(n, 10) + "B"
}

// formatBytes writes a memory size in binary units, as the kernel counts
// it: "23.4 MiB".
func formatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
