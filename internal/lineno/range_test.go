package lineno

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseRange(t *testing.T) {
	for _, tc := range []struct {
		in   string
		a, b int64
	}{
		{"1..5", 1, 5},
		{"007..0010", 7, 10},
		{"-100..-1", -100, -1},
		{"1..-1", 1, -1},
		{"5..3", 5, 3}, // parses; Ordered refuses it once resolved
		{"9223372036854775807..-9223372036854775807", 1<<63 - 1, -(1<<63 - 1)},
	} {
		a, b, err := ParseRange(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, [2]int64{tc.a, tc.b}, [2]int64{a, b}, tc.in)
	}
}

func TestParseRangeBad(t *testing.T) {
	for in, want := range map[string]string{
		"0..5":                    "its first line",
		"..5":                     "its first line",
		"5..":                     "its last line",
		"1...5":                   "its last line",
		"1..x":                    "its last line",
		"1..5..7":                 "its last line",
		"+1..5":                   "its first line",
		"1..-0":                   "its last line",
		"1 ..5":                   "its first line",
		"1..99999999999999999999": "too large",
		"15":                      "a range is {a}..{b}",
		"":                        "a range is {a}..{b}",
	} {
		_, _, err := ParseRange(in)
		require.ErrorIs(t, err, ErrInvalid, "%q", in)
		assert.Contains(t, err.Error(), want, "%q", in)
		assert.Contains(t, err.Error(), strconv.Quote(in), "%q: the error quotes the request", in)
	}
}

func TestOrdered(t *testing.T) {
	require.NoError(t, Ordered(3, 3))
	require.NoError(t, Ordered(3, 4))
	err := Ordered(5, 3)
	require.ErrorIs(t, err, ErrReversed)
	require.ErrorIs(t, err, ErrInvalid, "a reversed range is a bad request")
	assert.Equal(t, "range 5..3: range ends before it starts: line 5 comes after line 3", err.Error())
	assert.NotErrorIs(t, ErrInvalid, ErrReversed)
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"1..5", "-100..-1", "007..-0001", "0..5", "..5", "5..", "1...5", "1..x", "..", "", "1..5..7"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, b, err := ParseRange(s)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalid)
			return
		}
		// What it accepts is two line numbers that Parse accepts, joined
		// by the first "..".
		as, bs, ok := strings.Cut(s, Sep)
		require.True(t, ok)
		pa, err := Parse(as)
		require.NoError(t, err)
		pb, err := Parse(bs)
		require.NoError(t, err)
		assert.Equal(t, [2]int64{pa, pb}, [2]int64{a, b})
		assert.True(t, IsRange(s))
	})
}
