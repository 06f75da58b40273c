package shard

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/lineserver/lineserver/internal/index"
	"github.com/lineserver/lineserver/internal/lineno"
)

// Lines is where the lines First to Last, all of them this shard's, are in
// the data file: one contiguous span of bytes [Start, End).
type Lines struct {
	First, Last int64
	Start, End  int64
	// Unterminated means Last is the file's last line and may lack '\n'.
	Unterminated bool
	// Head and Tail are the spans of lines First and Last.
	Head, Tail Span
}

// Len is the length of the lines in bytes.
func (l Lines) Len() int64 { return l.End - l.Start }

// Count is the number of lines.
func (l Lines) Count() int64 { return l.Last - l.First + 1 }

// ResolveRange turns a parsed range a..b (negatives count from the end)
// into the lines of it this shard serves, first to last, and the range's
// resolved end, which is past last when the rest of the range is the next
// shard's. Its errors wrap lineno.ErrBeyondEnd (413: either end beyond the
// file), lineno.ErrReversed (400) or lineno.ErrNotHere (421: a is not this
// shard's line, or the shard cannot resolve b because it was not told the
// file's length).
func (sh *Shard) ResolveRange(a, b int64) (first, last, end int64, err error) {
	if !sh.totalKnown {
		if first, err = sh.Resolve(a); err != nil {
			return 0, 0, 0, err
		}
		if b < 0 {
			return 0, 0, 0, fmt.Errorf("range end %d: %w; this one serves lines %d to %d and was not told how many lines the file has",
				b, lineno.ErrNotHere, sh.first, sh.last)
		}
		if err := lineno.Ordered(first, b); err != nil {
			return 0, 0, 0, err
		}
		if b > sh.last {
			// It cannot tell a line of the next shard from one beyond the
			// end of the file (413), so it gives no partial answer.
			return 0, 0, 0, fmt.Errorf("range end %d: %w; this one serves lines %d to %d and was not told how many lines the file has",
				b, lineno.ErrNotHere, sh.first, sh.last)
		}
		return first, b, b, nil
	}
	if first, err = lineno.Resolve(a, sh.total); err != nil {
		return 0, 0, 0, err
	}
	if end, err = lineno.Resolve(b, sh.total); err != nil {
		return 0, 0, 0, err
	}
	if err := lineno.Ordered(first, end); err != nil {
		return 0, 0, 0, err
	}
	if err := lineno.Within(first, sh.first, sh.last); err != nil {
		return 0, 0, 0, err
	}
	return first, min(end, sh.last), end, nil
}

// LocateLines finds lines first to last, which ResolveRange returned, with
// two reads of the index.
func (sh *Shard) LocateLines(first, last int64) (Lines, error) {
	head, err := sh.Locate(first)
	if err != nil {
		return Lines{}, err
	}
	tail := head
	if last != first {
		if tail, err = sh.Locate(last); err != nil {
			return Lines{}, err
		}
	}
	if tail.Start < head.Start {
		return Lines{}, sh.damage("index %s: line %d starts at byte %d, before line %d at byte %d",
			sh.indexPath, last, tail.Start, first, head.Start)
	}
	return Lines{First: first, Last: last, Start: head.Start, End: tail.End,
		Unterminated: tail.Unterminated, Head: head, Tail: tail}, nil
}

// LinesReader reads a span of lines chunk by chunk and checks each chunk
// against the index as it goes: the byte before the span is '\n', and every
// '\n' in the span is exactly where the index says a line ends, no more and
// no fewer, so the bytes it hands out are the lines the index names, and
// each '\n' in them is a line boundary. It reads the index entries of the
// span in batches into a buffer of its own.
type LinesReader struct {
	sh *Shard
	ls Lines
	// pos is the next byte to read; line the line it belongs to, and next
	// where the line after it starts (ls.End for the last).
	pos, line, next int64
	// ibuf holds index entries from entry ifirst on, n of them.
	ibuf     []byte
	ifirst   int64
	ientries int64
}

// NewLinesReader returns a reader of ls that batches index entries in
// ibuf, which must hold at least one entry.
func (sh *Shard) NewLinesReader(ls Lines, ibuf []byte) *LinesReader {
	return &LinesReader{sh: sh, ls: ls, pos: ls.Start, line: ls.First, next: ls.Head.End, ibuf: ibuf}
}

// start returns where line n+1 starts, n in [First, Last); from the
// batched index entries, read when needed.
func (r *LinesReader) start(n int64) (int64, error) {
	sh := r.sh
	i := n + 1 - sh.line0
	if i < r.ifirst || i >= r.ifirst+r.ientries {
		// Entries up to that of line Last, all within the index.
		k := min(int64(len(r.ibuf))/index.EntrySize, r.ls.Last-sh.line0-i+1)
		if _, err := sh.index.ReadAt(r.ibuf[:k*index.EntrySize], i*index.EntrySize); err != nil {
			return 0, sh.damage("index %s: reading the entries from line %d: %v", sh.indexPath, n+1, err)
		}
		r.ifirst, r.ientries = i, k
	}
	at := (i - r.ifirst) * index.EntrySize
	off, err := index.ParseEntry(r.ibuf[at : at+index.EntrySize])
	if err != nil {
		return 0, sh.damage("index %s: the entry of line %d: %v", sh.indexPath, n+1, err)
	}
	return off - sh.base, nil
}

// Next reads the next chunk of the lines into buf, at most len(buf)-1
// bytes, checks it, and returns it with the number of the line its first
// byte belongs to. After the last chunk it returns io.EOF. A chunk that
// does not fit the index fails with ErrDamaged.
func (r *LinesReader) Next(buf []byte) (chunk []byte, line int64, err error) {
	sh, ls := r.sh, r.ls
	if r.pos >= ls.End {
		return nil, 0, io.EOF
	}
	n := min(int64(len(buf)-1), ls.End-r.pos)
	if n <= 0 {
		return nil, 0, fmt.Errorf("a %d-byte buffer for a span of lines", len(buf))
	}
	from, lead := r.pos, int64(0)
	if r.pos == ls.Start && ls.Start > 0 {
		from, lead = from-1, 1
	}
	p := buf[:lead+n]
	if _, err := sh.data.ReadAt(p, from); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, 0, sh.damage("data %s: ends before byte %d: it was truncated", sh.dataPath, from+int64(len(p)))
		}
		return nil, 0, fmt.Errorf("data %s: %w", sh.dataPath, err)
	}
	if err := sh.unchanged(); err != nil {
		return nil, 0, err
	}
	if lead == 1 && p[0] != '\n' {
		return nil, 0, sh.damage("data %s: the byte before line %d at byte %d is %q, not '\\n': the data changed",
			sh.dataPath, ls.First, ls.Start, p[0])
	}
	p = p[lead:]
	base, end, line := r.pos, r.pos+n, r.line
	for i := 0; ; {
		j := bytes.IndexByte(p[i:], '\n')
		if j < 0 {
			break
		}
		at := base + int64(i+j)
		if r.line > ls.Last || at+1 != r.next {
			return nil, 0, sh.damage("data %s: a '\\n' at byte %d, but the index says line %d ends at byte %d: the data changed",
				sh.dataPath, at, r.line, r.next-1)
		}
		switch r.line++; {
		case r.line == ls.Last:
			r.next = ls.End
		case r.line < ls.Last:
			if r.next, err = r.start(r.line); err != nil {
				return nil, 0, err
			}
		}
		i += j + 1
	}
	if r.line <= ls.Last && r.next <= end {
		if r.line != ls.Last || !ls.Unterminated || end != ls.End || end != sh.dataSize {
			return nil, 0, sh.damage("data %s: no '\\n' at byte %d, where the index says line %d ends: the data changed",
				sh.dataPath, r.next-1, r.line)
		}
		r.line++ // the file's last line, without its '\n'
	}
	if end == ls.End && r.line != ls.Last+1 {
		return nil, 0, sh.damage("index %s: line %d ends at byte %d, past the span of lines %d to %d, which ends at %d",
			sh.indexPath, r.line, r.next, ls.First, ls.Last, ls.End)
	}
	r.pos = end
	return p, line, nil
}
