package nginx

import (
	"fmt"
	"strconv"
	"strings"
)

// RangeRegex returns a regular expression that matches exactly the decimal
// strings of the integers in [first, last], written without a sign and
// without leading zeros ("7", never "07" or "+7"). It panics unless
// 0 <= first <= last.
//
// The expression is not anchored. It is one group or one term, so it can be
// embedded as it is, for example as "^0*" + RangeRegex(1, 100) + "$" to also
// allow leading zeros. It uses only literals, character classes such as
// [0-9], counted repetition {n}, non-capturing groups (?:...) and
// alternation, and means the same in Go's regexp (RE2) and in PCRE, the
// library NGINX uses.
//
// The expression grows with the number of digits of last, not with the size
// of the range: [1, 100] gives "(?:[1-9]|[1-9][0-9]|100)" and [1, 99999]
// "(?:[1-9]|[1-9][0-9]{1,3}|[1-9][0-9]{4})".
func RangeRegex(first, last int64) string {
	if first < 0 || first > last {
		panic(fmt.Sprintf("nginx.RangeRegex(%d, %d): want 0 <= first <= last", first, last))
	}
	a, b := strconv.FormatInt(first, 10), strconv.FormatInt(last, 10)
	if len(a) == len(b) {
		return group(sameLength(a, b))
	}
	alts := []string{sameLength(a, strings.Repeat("9", len(a)))}
	switch shortest, longest := len(a)+1, len(b)-1; {
	case shortest == longest:
		alts = append(alts, "[1-9]"+anyDigits(shortest-1))
	case shortest < longest:
		alts = append(alts, fmt.Sprintf("[1-9][0-9]{%d,%d}", shortest-1, longest-1))
	}
	alts = append(alts, sameLength("1"+strings.Repeat("0", len(b)-1), b))
	return "(?:" + strings.Join(alts, "|") + ")"
}

// sameLength returns an expression for the digit strings of len(a) from a
// to b, a <= b, compared as numbers (leading zeros count as digits).
func sameLength(a, b string) string {
	if a == b {
		return a
	}
	if strings.Trim(a, "0") == "" && strings.Trim(b, "9") == "" {
		return anyDigits(len(a))
	}
	if a[0] == b[0] {
		return a[:1] + group(sameLength(a[1:], b[1:]))
	}
	rest := len(a) - 1
	if rest == 0 {
		return digitClass(a[0], b[0])
	}
	// Three parts: a[0] followed by at least a[1:], the digits strictly
	// between followed by anything, b[0] followed by at most b[1:]. A part
	// whose bound is all zeros (or all nines) joins the middle one.
	var alts []string
	lo, hi := a[0], b[0]
	if strings.Trim(a[1:], "0") != "" {
		alts = append(alts, a[:1]+group(sameLength(a[1:], strings.Repeat("9", rest))))
		lo++
	}
	var upper string
	if strings.Trim(b[1:], "9") != "" {
		upper = b[:1] + group(sameLength(strings.Repeat("0", rest), b[1:]))
		hi--
	}
	if lo <= hi {
		alts = append(alts, digitClass(lo, hi)+anyDigits(rest))
	}
	if upper != "" {
		alts = append(alts, upper)
	}
	return strings.Join(alts, "|")
}

// group wraps re in a non-capturing group if it is an alternation at its top
// level, so that it can be concatenated.
func group(re string) string {
	depth := 0
	for _, c := range re {
		switch c {
		case '(':
			depth++
		case ')':
			depth--
		case '|':
			if depth == 0 {
				return "(?:" + re + ")"
			}
		}
	}
	return re
}

func digitClass(lo, hi byte) string {
	if lo == hi {
		return string(lo)
	}
	return "[" + string(lo) + "-" + string(hi) + "]"
}

func anyDigits(n int) string {
	switch n {
	case 0:
		return ""
	case 1:
		return "[0-9]"
	}
	return "[0-9]{" + strconv.Itoa(n) + "}"
}
