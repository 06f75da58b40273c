package nginx

import (
	"math"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRangeRegexExamples(t *testing.T) {
	for _, tc := range []struct {
		first, last int64
		want        string
	}{
		{1, 1, "1"},
		{0, 9, "[0-9]"},
		{3, 7, "[3-7]"},
		{1, 100, "(?:[1-9]|[1-9][0-9]|100)"},
		{101, 200, "(?:1(?:0[1-9]|[1-9][0-9])|200)"},
		{1, 99999, "(?:[1-9]|[1-9][0-9]{1,3}|[1-9][0-9]{4})"},
		{1000, 1999, "1[0-9]{3}"},
	} {
		t.Run(strconv.FormatInt(tc.first, 10)+"-"+strconv.FormatInt(tc.last, 10), func(t *testing.T) {
			assert.Equal(t, tc.want, RangeRegex(tc.first, tc.last))
		})
	}
}

func TestRangeRegexPanicsOnBadRange(t *testing.T) {
	assert.Panics(t, func() { RangeRegex(5, 4) })
	assert.Panics(t, func() { RangeRegex(-1, 4) })
}

// anchored compiles RangeRegex(first, last) as a whole-string match.
func anchored(t testing.TB, first, last int64) *regexp.Regexp {
	t.Helper()
	re, err := regexp.Compile("^" + RangeRegex(first, last) + "$")
	require.NoError(t, err)
	return re
}

// TestRangeRegexSmallRangesExhaustively checks every range within [0, 60]
// against every number up to 130.
func TestRangeRegexSmallRangesExhaustively(t *testing.T) {
	for first := int64(0); first <= 60; first++ {
		for last := first; last <= 60; last++ {
			re := anchored(t, first, last)
			for n := int64(0); n <= 130; n++ {
				if re.MatchString(strconv.FormatInt(n, 10)) != (n >= first && n <= last) {
					t.Fatalf("RangeRegex(%d, %d) = %s: wrong for %d", first, last, re, n)
				}
			}
		}
	}
}

// randomNumber returns a number of 1 to 19 digits, each length about as
// likely, so that ranges cross powers of ten of every size.
func randomNumber(r *rand.Rand) int64 {
	digits := 1 + r.IntN(19)
	hi := int64(math.MaxInt64)
	if digits < 19 {
		hi = int64(math.Pow10(digits)) - 1
	}
	lo := int64(math.Pow10(digits - 1))
	return lo + r.Int64N(hi-lo+1)
}

// probes returns numbers around the bounds of [first, last], around the
// powers of ten and nines in between, and random ones, all within
// [0, MaxInt64].
func probes(r *rand.Rand, first, last int64) []int64 {
	var ns []int64
	add := func(n int64) {
		if n >= 0 {
			ns = append(ns, n)
		}
	}
	near := func(n int64) {
		for d := int64(-2); d <= 2; d++ {
			if (d > 0 && n > math.MaxInt64-d) || (d < 0 && n < math.MinInt64-d) {
				continue
			}
			add(n + d)
		}
	}
	near(first)
	near(last)
	near(math.MaxInt64)
	for p := int64(1); p <= math.MaxInt64/10; p *= 10 {
		near(p)
		near(p * 9)
	}
	for range 20 {
		add(first + r.Int64N(last-first+1))
		add(randomNumber(r))
	}
	return ns
}

// TestRangeRegexRandomRanges checks random ranges of every magnitude: each
// matches its numbers, no other, and no number with a sign or a leading
// zero.
func TestRangeRegexRandomRanges(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		first, last := randomNumber(r), randomNumber(r)
		if r.IntN(10) == 0 {
			last = first + r.Int64N(1000)
			if last < first {
				last = math.MaxInt64
			}
		}
		if first > last {
			first, last = last, first
		}
		re := anchored(t, first, last)
		for _, n := range probes(r, first, last) {
			s := strconv.FormatInt(n, 10)
			if re.MatchString(s) != (n >= first && n <= last) {
				t.Fatalf("RangeRegex(%d, %d) = %s: wrong for %d", first, last, re, n)
			}
			for _, other := range []string{"0" + s, "-" + s, "+" + s, " " + s, s + " "} {
				if re.MatchString(other) {
					t.Fatalf("RangeRegex(%d, %d) = %s matches %q", first, last, re, other)
				}
			}
		}
	}
}

// TestRangeRegexPartitions cuts [1, total] into random shards, as a
// manifest does, and checks that each number matches the expression of its
// own shard and no other.
func TestRangeRegexPartitions(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 300 {
		total := randomNumber(r)
		bounds := []int64{0}
		for range r.IntN(8) {
			bounds = append(bounds, r.Int64N(total))
		}
		bounds = append(bounds, total)
		slices.Sort(bounds)
		var res []*regexp.Regexp
		var ranges [][2]int64
		for i := 1; i < len(bounds); i++ {
			if bounds[i] == bounds[i-1] {
				continue
			}
			ranges = append(ranges, [2]int64{bounds[i-1] + 1, bounds[i]})
			res = append(res, anchored(t, bounds[i-1]+1, bounds[i]))
		}
		var ns []int64
		for _, rg := range ranges {
			ns = append(ns, probes(r, rg[0], rg[1])...)
		}
		for _, n := range ns {
			if n < 1 || n > total {
				continue
			}
			s := strconv.FormatInt(n, 10)
			for i, re := range res {
				own := n >= ranges[i][0] && n <= ranges[i][1]
				if re.MatchString(s) != own {
					t.Fatalf("shard %v: %s: match of %d is %v, want %v", ranges[i], re, n, !own, own)
				}
			}
		}
	}
}

// FuzzRangeRegex checks, for any range and number, that the expression
// matches the number's decimal string exactly when it is in the range.
func FuzzRangeRegex(f *testing.F) {
	f.Add(int64(1), int64(100), int64(100))
	f.Add(int64(301), int64(math.MaxInt64), int64(math.MaxInt64))
	f.Add(int64(999), int64(1000), int64(1001))
	f.Fuzz(func(t *testing.T, first, last, n int64) {
		if first < 0 || first > last || n < 0 {
			t.Skip()
		}
		re := anchored(t, first, last)
		s := strconv.FormatInt(n, 10)
		if re.MatchString(s) != (n >= first && n <= last) {
			t.Fatalf("RangeRegex(%d, %d) = %s: wrong for %d", first, last, re, n)
		}
		if re.MatchString("0"+s) || re.MatchString("-"+s) {
			t.Fatalf("RangeRegex(%d, %d) = %s matches %d with a zero or sign", first, last, re, n)
		}
	})
}
