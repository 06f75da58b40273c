package lineno

import (
	"fmt"
	"strconv"
	"strings"
)

// ErrReversed reports a range whose first line, once resolved, comes after
// its last. It is a bad request like text that is not a line number:
// errors.Is(ErrReversed, ErrInvalid) holds.
var ErrReversed error = reversed{}

type reversed struct{}

func (reversed) Error() string        { return "range ends before it starts" }
func (reversed) Is(target error) bool { return target == ErrInvalid }

// Sep separates the two ends of a range of lines: "{a}..{b}".
const Sep = ".."

// IsRange reports whether s, the part of a path after /lines/, asks for a
// range rather than one line.
func IsRange(s string) bool { return strings.Contains(s, Sep) }

// ParseRange parses "{a}..{b}": two line numbers as Parse takes them,
// separated by "..". The ends are not resolved, so "-100..-1" and "1..-1"
// parse; Ordered checks them once resolved. A side that is not a line
// number ("0..5", "..5", "5..", "1...5", "1..x") fails with an error
// wrapping ErrInvalid that names the side.
func ParseRange(s string) (a, b int64, err error) {
	as, bs, ok := strings.Cut(s, Sep)
	if !ok {
		return 0, 0, invalidRange(s, "a range is {a}..{b}")
	}
	if a, err = Parse(as); err != nil {
		return 0, 0, fmt.Errorf("range %s: its first line: %w", quote(s), err)
	}
	if b, err = Parse(bs); err != nil {
		return 0, 0, fmt.Errorf("range %s: its last line: %w", quote(s), err)
	}
	return a, b, nil
}

// Ordered checks that the resolved ends of a range are in order, a <= b;
// otherwise the error wraps ErrReversed.
func Ordered(a, b int64) error {
	if a > b {
		return fmt.Errorf("range %d..%d: %w: line %d comes after line %d", a, b, ErrReversed, a, b)
	}
	return nil
}

func invalidRange(s, why string) error {
	return fmt.Errorf("%s is %w: %s", quote(s), ErrInvalid, why)
}

func quote(s string) string {
	if len(s) > maxQuoted {
		s = s[:maxQuoted] + "..."
	}
	return strconv.Quote(s)
}
