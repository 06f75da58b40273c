// Package lineno parses the line number of a request and resolves negative
// numbers, which count from the end of the file.
package lineno

import (
	"errors"
	"fmt"
	"strconv"
)

var (
	// ErrInvalid reports text that is not a line number.
	ErrInvalid = errors.New("not a line number")
	// ErrBeyondEnd reports a line number whose magnitude is beyond the end of
	// the file.
	ErrBeyondEnd = errors.New("line is beyond the end of the file")
	// ErrNotHere reports a line of the file that another shard serves.
	ErrNotHere = errors.New("line is served by another shard")
)

// maxQuoted bounds how much of a bad input an error message repeats.
const maxQuoted = 64

// Parse parses a decimal line number: an optional '-' then one or more ASCII
// digits (leading zeros allowed), not zero, fitting an int64. Anything else,
// '+5', ' 5', '1.5', '0', '-0' or the empty string among it, fails with an
// error wrapping ErrInvalid whose text is safe to show a client. It does not
// allocate for valid input.
func Parse(s string) (int64, error) {
	digits, neg := s, false
	if len(digits) > 0 && digits[0] == '-' {
		digits, neg = digits[1:], true
	}
	if len(digits) == 0 {
		return 0, invalid(s, "no digits")
	}
	var n int64
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if c < '0' || c > '9' {
			return 0, invalid(s, "only an optional '-' and the digits 0-9 are allowed")
		}
		d := int64(c - '0')
		if n > (1<<63-1-d)/10 {
			return 0, invalid(s, "too large")
		}
		n = n*10 + d
	}
	if n == 0 {
		return 0, invalid(s, "lines are numbered from 1")
	}
	if neg {
		n = -n
	}
	return n, nil
}

func invalid(s, why string) error {
	if len(s) > maxQuoted {
		s = s[:maxQuoted] + "..."
	}
	return fmt.Errorf("%s is %w: %s", strconv.Quote(s), ErrInvalid, why)
}

// Resolve turns n (from Parse) into a positive line number of a file of total
// lines: -1 is the last line. A magnitude beyond total fails with an error
// wrapping ErrBeyondEnd.
func Resolve(n, total int64) (int64, error) {
	if n > total || (n < 0 && n < -total) {
		return 0, fmt.Errorf("line %d: %w, which has %d lines", n, ErrBeyondEnd, total)
	}
	if n < 0 {
		return total + 1 + n, nil
	}
	return n, nil
}

// Within checks that the positive line number n is in [first, last], the
// range one shard serves; otherwise the error wraps ErrNotHere.
func Within(n, first, last int64) error {
	if n < first || n > last {
		return fmt.Errorf("line %d: %w; this one serves lines %d to %d", n, ErrNotHere, first, last)
	}
	return nil
}
