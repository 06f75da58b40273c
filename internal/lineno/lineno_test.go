package lineno

import (
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"1", 1},
		{"7", 7},
		{"007", 7},
		{"-1", -1},
		{"-007", -7},
		{"9223372036854775807", math.MaxInt64},
		{"-9223372036854775807", -math.MaxInt64},
		{"00000000000000000000000000001", 1},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Parse(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestParseRejects(t *testing.T) {
	for _, in := range []string{
		"", "-", "0", "-0", "000", "+5", " 5", "5 ", "1.5", "abc", "1e3",
		"0x10", "--1", "1-", "9223372036854775808", "-9223372036854775808",
		"99999999999999999999999", "١", "5\x00", "%35", strings.Repeat("9", 1000),
	} {
		t.Run(strconv.Quote(in), func(t *testing.T) {
			_, err := Parse(in)
			require.ErrorIs(t, err, ErrInvalid)
			assert.LessOrEqual(t, len(err.Error()), 200, "the message stays short")
		})
	}
}

func TestResolve(t *testing.T) {
	for _, tc := range []struct {
		n, total, want int64
		err            error
	}{
		{1, 300, 1, nil},
		{300, 300, 300, nil},
		{301, 300, 0, ErrBeyondEnd},
		{-1, 300, 300, nil},
		{-300, 300, 1, nil},
		{-301, 300, 0, ErrBeyondEnd},
		{1, 0, 0, ErrBeyondEnd},
		{-1, 0, 0, ErrBeyondEnd},
		{-math.MaxInt64, 300, 0, ErrBeyondEnd},
		{math.MaxInt64, math.MaxInt64, math.MaxInt64, nil},
		{-math.MaxInt64, math.MaxInt64, 1, nil},
	} {
		got, err := Resolve(tc.n, tc.total)
		if tc.err != nil {
			assert.ErrorIs(t, err, tc.err, "Resolve(%d, %d)", tc.n, tc.total)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, tc.want, got, "Resolve(%d, %d)", tc.n, tc.total)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"1", "-1", "007", "0", "+5", "abc", "9223372036854775808", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalid)
			return
		}
		require.NotZero(t, n)
		// What it accepts is exactly what strconv accepts once leading zeros
		// are gone, and round-trips.
		trimmed := strings.TrimLeft(strings.TrimPrefix(s, "-"), "0")
		if strings.HasPrefix(s, "-") {
			trimmed = "-" + trimmed
		}
		assert.Equal(t, trimmed, strconv.FormatInt(n, 10))
	})
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("123456789"); err != nil {
			b.Fatal(err)
		}
	}
}
