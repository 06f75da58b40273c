// Package split finds where to cut a data file into slices on line
// boundaries, and copies slices out with the kernel's file-to-file copy.
package split

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/lineserver/lineserver/internal/index"
)

// ErrTooFewLines reports a file with fewer lines than the slices asked for.
var ErrTooFewLines = errors.New("fewer lines than slices")

// scanSize is how many bytes the searches for a line end read at a time.
const scanSize = 64 << 10

// ByBytes returns the n+1 byte offsets that cut the size bytes of r into n
// slices of about size/n bytes each: cuts[0] is 0, cuts[n] is size, and
// slice i is r's bytes cuts[i-1] to cuts[i]. Every cut is at the start of
// a line and every slice holds at least one line, even when a long line
// covers several of the even cut points. A file of fewer than n lines is
// ErrTooFewLines, except that an empty file is one empty slice when n is 1.
func ByBytes(r io.ReaderAt, size int64, n int) ([]int64, error) {
	if n < 1 {
		return nil, fmt.Errorf("%d slices: want at least 1", n)
	}
	if size == 0 && n == 1 {
		return []int64{0, 0}, nil
	}
	f := &finder{r: r, size: size, buf: make([]byte, scanSize)}
	tail, err := f.lastStarts(n)
	if err != nil {
		return nil, err
	}
	cuts := make([]int64, n+1)
	cuts[n] = size
	for k := 1; k < n; k++ {
		c, err := f.startAtOrAfter(size / int64(n) * int64(k))
		if err != nil {
			return nil, err
		}
		next, err := f.startAtOrAfter(cuts[k-1] + 1)
		if err != nil {
			return nil, err
		}
		// At least one line in this slice, and one in each after it.
		cuts[k] = min(max(c, next), tail[k])
	}
	return cuts, nil
}

// ByLines reads r to its end and returns the byte offsets that cut it into
// slices of k lines each, the last one with the lines left: cuts[0] is 0
// and the last cut is the size of r. An empty r is one empty slice.
func ByLines(ctx context.Context, r io.Reader, k int64) ([]int64, error) {
	if k < 1 {
		return nil, fmt.Errorf("%d lines per slice: want at least 1", k)
	}
	cuts := []int64{0}
	buf := make([]byte, 1<<20)
	var pos int64
	left := k // newlines until the next cut
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n, err := io.ReadFull(r, buf)
		b := buf[:n]
		for int64(bytes.Count(b, []byte{'\n'})) >= left {
			for ; left > 0; left-- {
				i := bytes.IndexByte(b, '\n')
				pos += int64(i + 1)
				b = b[i+1:]
			}
			cuts = append(cuts, pos)
			left = k
		}
		left -= int64(bytes.Count(b, []byte{'\n'}))
		pos += int64(len(b))
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read data: %w", err)
		}
	}
	// A cut at the very end (the last slice's '\n' ends the file) is the
	// end, not the start of another slice.
	if last := cuts[len(cuts)-1]; last != pos || len(cuts) == 1 {
		cuts = append(cuts, pos)
	}
	return cuts, nil
}

// IndexByBytes is ByBytes for a file that is not cut but whose index idx,
// of lines entries, is at hand: it returns the n+1 line positions (counted
// from 0) where the slices start, cuts[n] being lines. It reads about
// n*log2(lines) entries.
func IndexByBytes(idx io.ReaderAt, lines, size int64, n int) ([]int64, error) {
	switch {
	case n < 1:
		return nil, fmt.Errorf("%d slices: want at least 1", n)
	case lines == 0 && n == 1:
		return []int64{0, 0}, nil
	case lines < int64(n):
		return nil, fmt.Errorf("%w: %d lines for %d slices", ErrTooFewLines, lines, n)
	}
	var readErr error
	entry := make([]byte, index.EntrySize)
	offset := func(line int64) int64 {
		if _, err := idx.ReadAt(entry, line*index.EntrySize); err != nil {
			readErr = fmt.Errorf("read index entry %d: %w", line, err)
			return 0
		}
		off, err := index.ParseEntry(entry)
		if err != nil {
			readErr = fmt.Errorf("index entry %d: %w", line, err)
		}
		return off
	}
	cuts := make([]int64, n+1)
	cuts[n] = lines
	for k := 1; k < n; k++ {
		target := size / int64(n) * int64(k)
		c := int64(sort.Search(int(lines), func(i int) bool { return readErr != nil || offset(int64(i)) >= target }))
		if readErr != nil {
			return nil, readErr
		}
		cuts[k] = min(max(c, cuts[k-1]+1), lines-int64(n-k))
	}
	return cuts, nil
}

// finder finds line starts in r by reading around the places asked about.
type finder struct {
	r    io.ReaderAt
	size int64
	buf  []byte
}

// read reads up to len(buf) bytes at off, fewer only at the end of r.
func (f *finder) read(off int64, n int) ([]byte, error) {
	b := f.buf[:min(int64(n), f.size-off)]
	got, err := f.r.ReadAt(b, off)
	if got == len(b) {
		return b, nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return nil, fmt.Errorf("read data at byte %d: %w", off+int64(got), err)
}

// startAtOrAfter returns the first line start at or after off, or size.
func (f *finder) startAtOrAfter(off int64) (int64, error) {
	if off <= 0 {
		return 0, nil
	}
	// A line starts at off if byte off-1 is a '\n'.
	for at := off - 1; at < f.size; {
		b, err := f.read(at, len(f.buf))
		if err != nil {
			return 0, err
		}
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			return min(at+int64(i)+1, f.size), nil
		}
		at += int64(len(b))
	}
	return f.size, nil
}

// lastStarts returns the starts of the last n lines in increasing order,
// or ErrTooFewLines.
func (f *finder) lastStarts(n int) ([]int64, error) {
	starts := make([]int64, n)
	found := 0
	end := f.size // the '\n' that ends the file ends the last line
	if end > 0 {
		b, err := f.read(end-1, 1)
		if err != nil {
			return nil, err
		}
		if b[0] == '\n' {
			end--
		}
	}
	for found < n {
		if end <= 0 {
			if f.size == 0 {
				break
			}
			starts[n-1-found] = 0
			found++
			break
		}
		from := max(0, end-int64(len(f.buf)))
		b, err := f.read(from, int(end-from))
		if err != nil {
			return nil, err
		}
		i := bytes.LastIndexByte(b, '\n')
		if i < 0 {
			end = from
			continue
		}
		starts[n-1-found] = from + int64(i) + 1
		found++
		end = from + int64(i)
	}
	if found < n {
		return nil, fmt.Errorf("%w: %d lines for %d slices", ErrTooFewLines, found, n)
	}
	return starts, nil
}
