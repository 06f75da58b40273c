package index

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
)

// ErrMismatch reports an index that does not match its data; the error is
// a *Mismatch that says where.
var ErrMismatch = errors.New("the index does not match the data")

// Mismatch is the first place where an index differs from the index of its
// data. It wraps ErrMismatch.
type Mismatch struct {
	// Line is the number of the line whose entry differs.
	Line int64
	// Want is the entry the data calls for; nil when the data has fewer
	// lines than the index has entries.
	Want []byte
	// Got is what the index holds there: an entry, or fewer bytes at the
	// end of a truncated index; nil when the index ends before the data.
	Got []byte
}

func (m *Mismatch) Error() string {
	_, bad := ParseEntry(m.Got)
	switch {
	case m.Got == nil:
		return fmt.Sprintf("line %d: missing entry: the index ends, but the data has this line at offset %s", m.Line, m.Want[:Digits])
	case m.Want == nil:
		return fmt.Sprintf("line %d: extra entry %q: the data has only %d lines", m.Line, m.Got, m.Line-1)
	case len(m.Got) < EntrySize:
		return fmt.Sprintf("line %d: truncated entry %q: the index size is not a multiple of %d", m.Line, m.Got, EntrySize)
	case bad != nil:
		return fmt.Sprintf("line %d: entry %q is not %d digits and a newline", m.Line, m.Got, Digits)
	}
	return fmt.Sprintf("line %d: expected offset %s, found %s", m.Line, m.Want[:Digits], m.Got[:Digits])
}

// Unwrap returns ErrMismatch.
func (m *Mismatch) Unwrap() error { return ErrMismatch }

// Verify checks every entry of idx against data and returns the number of
// lines. Entry i must be the offset of line i relative to entry 0, which is
// the offset of data's first byte: 0 for a whole file, the slice's offset
// in the whole file for a slice that kept global offsets. The first
// difference is a *Mismatch; missing, extra, truncated and malformed
// entries all are.
func Verify(ctx context.Context, data, idx io.Reader, opt Options) (int64, error) {
	first := make([]byte, EntrySize)
	n, err := io.ReadFull(idx, first)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return 0, fmt.Errorf("read index: %w", err)
	}
	// Entry 0 sets the shift of all entries; a bad one is reported as it
	// is found, below, against a shift of 0.
	shift, err := ParseEntry(first[:n])
	if err != nil {
		shift = 0
	}
	v := &verifier{idx: io.MultiReader(bytes.NewReader(first[:n]), idx), line: opt.FirstLine}
	if v.line == 0 {
		v.line = 1
	}
	if err := scan(ctx, data, shift, opt, v.check); err != nil {
		return 0, err
	}
	lines := v.line - max(opt.FirstLine, 1)
	rest := make([]byte, EntrySize)
	n, err = io.ReadFull(v.idx, rest)
	if n > 0 {
		return 0, &Mismatch{Line: v.line, Got: rest[:n]}
	}
	if !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("read index: %w", err)
	}
	return lines, nil
}

// verifier compares the entries scan computes with the index.
type verifier struct {
	idx  io.Reader
	buf  []byte
	line int64 // the number of the next line to check
}

func (v *verifier) check(want []byte) error {
	if cap(v.buf) < len(want) {
		v.buf = make([]byte, len(want))
	}
	got := v.buf[:len(want)]
	n, err := io.ReadFull(v.idx, got)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("read index: %w", err)
	}
	got = got[:n]
	if n == len(want) && bytes.Equal(got, want) {
		v.line += int64(n / EntrySize)
		return nil
	}
	d := 0
	for d < n && got[d] == want[d] {
		d++
	}
	at := d / EntrySize * EntrySize
	m := &Mismatch{Line: v.line + int64(at/EntrySize), Want: bytes.Clone(want[at : at+EntrySize])}
	if at < n {
		m.Got = bytes.Clone(got[at:min(n, at+EntrySize)])
	}
	return m
}
