package nginx

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/lineserver/lineserver/internal/manifest"
)

// The routing maps of nginx.conf.tmpl find a line number's shard with a
// fixed number of steps, whatever the number of shards:
//
//  1. The shape: the proxying location captures the sign ($lines_neg) and
//     the digits without leading zeros ($lines_n). A map with one regular
//     expression per digit count, the longest first, names the shape
//     ("6" for six digits, "-6" for six digits after a '-') and captures
//     each digit ($lines_d1, $lines_d2, ...).
//  2. The first look-up: an exact-key map from the shape to the map that
//     holds its buckets, $lines_wW for a prefix of W digits.
//  3. The buckets: map $lines_wW is keyed by the shape and the first W
//     digits ("6:123" is every six-digit number from 123000 to 123999).
//     A bucket all of whose numbers one shard serves names that shard. A
//     bucket with one shard boundary names the shards on either side and
//     interleaves the number's remaining digits with the boundary's (see
//     comparison). A bucket with more boundaries looks up the next digit:
//     its value is $lines_w(W+1), whose keys are that bucket's ten children.
//  4. The decision: exact keys map each shard name to itself; only a bucket
//     with one boundary reaches the two regular expressions, which read the
//     interleaved digits: pairs of equal digits, then a pair whose first
//     digit (the number's) is smaller, means the number is below the
//     boundary.
//
// Exact keys are found through a hash; the regular expressions tried are
// at most one per digit count and two at the end, so the work per request
// does not grow with the number of shards. The keys grow with it: a few per
// shard and sign, plus ten per bucket that holds more than one boundary.

// routeTable is the content of the routing maps.
type routeTable struct {
	// Shapes, longest first: the regular expression that matches $lines_n
	// of that many digits, and the shape it names without the sign.
	Shapes []shapeRule
	// Entry maps a shape, with its sign, to the bucket map to look in.
	Entry []mapEntry
	// Buckets are the maps $lines_wW, by increasing W.
	Buckets []bucketMap
	// Names are the shards, which the decision map maps to themselves.
	Names []string
	// Compares reports whether any bucket holds one boundary, so that the
	// decision map needs its regular expressions.
	Compares bool
	// Keys counts the exact keys of every map.
	Keys int
}

type shapeRule struct {
	Digits int
	Regex  string
}

type mapEntry struct{ Key, Value string }

type bucketMap struct {
	Width   int
	Entries []mapEntry
}

// Less and Equal are the regular expressions of the decision: after the
// two shard names, pairs of the number's digit and the boundary's.
const (
	equalPairs = `(?:00|11|22|33|44|55|66|77|88|99)*`
	lessPair   = `(?:0[1-9]|1[2-9]|2[3-9]|3[4-9]|4[5-9]|5[6-9]|6[7-9]|7[89]|89)`
)

// part is a run of numbers, from start to the next part's start, that one
// shard serves.
type part struct {
	start int64
	name  string
}

// side is the numbers of one sign: the positive ones, or the magnitudes of
// the negative ones, which count back from the end of the file.
type side struct {
	sign  string // "" or "-"
	total int64
	parts []part // sorted by start, the first at 1
}

// owner is the shard that serves n, 1 <= n <= total.
func (s *side) owner(n int64) string {
	i := sort.Search(len(s.parts), func(i int) bool { return s.parts[i].start > n }) - 1
	return s.parts[i].name
}

// boundariesIn counts the parts that start in (lo, hi], and returns the
// first of them.
func (s *side) boundariesIn(lo, hi int64) (int, int64) {
	i := sort.Search(len(s.parts), func(i int) bool { return s.parts[i].start > lo })
	j := sort.Search(len(s.parts), func(i int) bool { return s.parts[i].start > hi })
	if j == i {
		return 0, 0
	}
	return j - i, s.parts[i].start
}

// largest is the largest number of d digits, d <= 19, within an int64.
func largest(d int) int64 {
	if d >= 19 {
		return math.MaxInt64
	}
	return pow10(d) - 1
}

// bucketEnd is the last number of the bucket from start of size numbers.
func bucketEnd(start, size int64) int64 {
	if start > math.MaxInt64-(size-1) {
		return math.MaxInt64
	}
	return start + size - 1
}

func pow10(n int) int64 {
	p := int64(1)
	for range n {
		p *= 10
	}
	return p
}

// newRouteTable builds the maps for m, whose shards are in order and cover
// 1 to m.TotalLines.
func newRouteTable(m *manifest.Manifest) *routeTable {
	t := &routeTable{}
	total := m.TotalLines
	if total < 1 {
		return t
	}
	pos := side{total: total}
	neg := side{sign: "-", total: total}
	for i, s := range m.Shards {
		t.Names = append(t.Names, s.Name)
		pos.parts = append(pos.parts, part{s.First, s.Name})
		r := m.Shards[len(m.Shards)-1-i]
		neg.parts = append(neg.parts, part{total + 1 - r.Last, r.Name})
	}
	digits := len(strconv.FormatInt(total, 10))
	for d := digits; d >= 1; d-- {
		t.Shapes = append(t.Shapes, shapeRule{Digits: d, Regex: shapeRegex(d)})
	}
	buckets := map[int][]mapEntry{}
	for _, s := range []*side{&pos, &neg} {
		for d := 1; d <= digits; d++ {
			shape := s.sign + strconv.Itoa(d)
			lo, hi := pow10(d-1), min(largest(d), total)
			// The whole shape is a bucket of no digits: a shard, or a
			// comparison with its one boundary, needs no bucket map.
			switch n, b := s.boundariesIn(lo, hi); n {
			case 0:
				t.Entry = append(t.Entry, mapEntry{shape, s.owner(lo)})
				continue
			case 1:
				t.Entry = append(t.Entry, mapEntry{shape, compareValue(s.owner(lo), s.owner(b), strconv.FormatInt(b, 10), 0)})
				continue
			}
			w, entries := s.bestWidth(d)
			t.Entry = append(t.Entry, mapEntry{shape, "$lines_w" + strconv.Itoa(w)})
			for width, es := range entries {
				buckets[width] = append(buckets[width], es...)
			}
		}
	}
	t.Keys = len(t.Entry) + len(t.Names)
	for _, e := range t.Entry {
		t.Compares = t.Compares || strings.Contains(e.Value, " ")
	}
	for w := 1; w <= digits; w++ {
		es := buckets[w]
		if len(es) == 0 {
			continue
		}
		t.Buckets = append(t.Buckets, bucketMap{Width: w, Entries: es})
		t.Keys += len(es)
		for _, e := range es {
			t.Compares = t.Compares || strings.Contains(e.Value, " ")
		}
	}
	return t
}

// shapeRegex matches a number of d digits, capturing each one.
func shapeRegex(d int) string {
	var b strings.Builder
	b.WriteString("^")
	for i := 1; i <= d; i++ {
		class := "[0-9]"
		if i == 1 {
			class = "[1-9]"
		}
		fmt.Fprintf(&b, "(?<lines_d%d>%s)", i, class)
	}
	b.WriteString(`\z`)
	return b.String()
}

// bestWidth returns the prefix width, and the bucket entries by width,
// that give the fewest keys for the numbers of d digits. Widths with many
// more buckets than boundaries are not tried.
func (s *side) bestWidth(d int) (int, map[int][]mapEntry) {
	lo, hi := pow10(d-1), min(largest(d), s.total)
	n, _ := s.boundariesIn(lo, hi)
	bestW, best, bestKeys := 0, map[int][]mapEntry(nil), 0
	for w := 1; w <= d; w++ {
		size := pow10(d - w)
		if w > 1 && hi/size-lo/size+1 > 4*int64(n)+10 {
			break
		}
		entries := map[int][]mapEntry{}
		keys := s.buckets(d, w, lo, hi, entries)
		if best == nil || keys < bestKeys {
			bestW, best, bestKeys = w, entries, keys
		}
	}
	return bestW, best
}

// buckets adds the entries of the buckets of width w that cover [lo, hi],
// numbers of d digits, to entries and returns how many it added.
func (s *side) buckets(d, w int, lo, hi int64, entries map[int][]mapEntry) int {
	size := pow10(d - w)
	keys := 0
	for p := lo / size; ; p++ {
		keys += s.bucket(d, w, p, max(lo, p*size), min(hi, bucketEnd(p*size, size)), entries)
		if p == hi/size { // not p <= hi/size: p+1 may not fit
			break
		}
	}
	return keys
}

// bucket adds the entry of the bucket with the w-digit prefix p, whose
// numbers within the file are [lo, hi].
func (s *side) bucket(d, w int, p, lo, hi int64, entries map[int][]mapEntry) int {
	key := s.sign + strconv.Itoa(d) + ":" + strconv.FormatInt(p, 10)
	add := func(v string) { entries[w] = append(entries[w], mapEntry{key, v}) }
	switch n, b := s.boundariesIn(lo, hi); {
	case n == 0:
		add(s.owner(lo))
		return 1
	case n == 1:
		add(compareValue(s.owner(lo), s.owner(b), strconv.FormatInt(b, 10), w))
		return 1
	default:
		add("$lines_w" + strconv.Itoa(w+1))
		return 1 + s.buckets(d, w+1, lo, hi, entries)
	}
}

// compareValue is the value of a bucket with one boundary, b, whose first
// w digits are the bucket's: the shard below b, the shard from b on, and
// the rest of the number's digits each followed by b's. Trailing zeros of
// b need no comparison: below b is below it in the digits before them.
func compareValue(below, from, b string, w int) string {
	var v strings.Builder
	v.WriteString(below + " " + from + " ")
	rest := strings.TrimRight(b[w:], "0")
	for i := range len(rest) {
		fmt.Fprintf(&v, "${lines_d%d}%c", w+1+i, rest[i])
	}
	return v.String()
}
