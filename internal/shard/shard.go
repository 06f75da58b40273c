// Package shard serves the lines of one shard: it opens a data file and its
// index, checks at open that they belong together, finds any line in O(1)
// with two reads, and checks every byte it hands out on the way.
package shard

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"strconv"
	"sync/atomic"

	"github.com/lineserver/lineserver/internal/index"
	"github.com/lineserver/lineserver/internal/lineno"
)

var (
	// ErrMismatch reports files that do not fit each other or the settings;
	// Open fails with it.
	ErrMismatch = errors.New("files do not fit")
	// ErrDamaged reports data or an index found wrong while serving: the
	// files changed under the shard. The shard stays not ready after it.
	ErrDamaged = errors.New("data or index damaged")
)

// Options says which files a shard opens and which lines it serves.
type Options struct {
	// DataPath is the data file: the whole file or the shard's slice.
	DataPath string
	// IndexPath is DataPath's index.
	IndexPath string
	// First is the first line served (INDEX_FIRST_LINE_NUMBER); 0 means
	// unset: what the manifest beside the data says, or 1.
	First int64
	// Last is the last line served (INDEX_LAST_LINE_NUMBER); 0 means
	// unset: what the manifest says, or the last line the index covers.
	Last int64
	// Total is the number of lines of the whole file (FILE_TOTAL_LINES);
	// 0 means unset: what the manifest says, or the entries of a whole
	// file's index. Layout (layout.go) has the rules.
	Total int64
	// NoManifest skips the manifest.json beside the data file.
	NoManifest bool
}

// Shard serves the lines First to Last of a file of Total lines. It is safe
// for concurrent use.
type Shard struct {
	data, index         *os.File
	dataPath, indexPath string
	first, last, total  int64
	// totalKnown is false for a slice whose file's length nothing gave:
	// negative numbers and numbers past its range are then another
	// shard's business (421).
	totalKnown bool
	// layout says how the range was decided, for the log.
	layout string
	// line0 is the line number of index entry 0: 1 for an index of the
	// whole file, First for a slice.
	line0   int64
	entries int64
	// base is the value of entry 0: offsets are read relative to it.
	base     int64
	dataSize int64
	// dataInfo and indexInfo are the files' fstat at open, to find them
	// in a manifest.
	dataInfo, indexInfo os.FileInfo
	tag                 string
	damaged             atomic.Pointer[error]
	guard               guard
}

// Span is where a line is in the data file: bytes [Start, End).
type Span struct {
	Start, End int64
	// Unterminated means the line is the file's last and may lack '\n'.
	Unterminated bool
}

// Len is the length of the line in bytes, its '\n' included.
func (s Span) Len() int64 { return s.End - s.Start }

// Open opens and checks the files of a shard. Every error names the file or
// setting at fault and wraps ErrMismatch, or is the operating system's.
func Open(o Options) (*Shard, error) {
	sh := &Shard{dataPath: o.DataPath, indexPath: o.IndexPath}
	if err := sh.open(o); err != nil {
		sh.Close()
		return nil, err
	}
	return sh, nil
}

func (sh *Shard) open(o Options) (err error) {
	if sh.data, err = os.Open(o.DataPath); err != nil {
		return fmt.Errorf("data file (FILE_REPOSITORY_FILE_PATH): %w", err)
	}
	if sh.index, err = os.Open(o.IndexPath); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			build := "lines index " + o.DataPath
			if o.IndexPath != o.DataPath+"_index.txt" {
				build += " -o " + o.IndexPath
			}
			return fmt.Errorf("index file (INDEX_FILE_PATH): %w; build it with: %s", err, build)
		}
		return fmt.Errorf("index file (INDEX_FILE_PATH): %w", err)
	}
	dataInfo, err := regular(sh.data, "data file (FILE_REPOSITORY_FILE_PATH)")
	if err != nil {
		return err
	}
	indexInfo, err := regular(sh.index, "index file (INDEX_FILE_PATH)")
	if err != nil {
		return err
	}
	sh.dataSize = dataInfo.Size()
	sh.dataInfo, sh.indexInfo = dataInfo, indexInfo
	if indexInfo.Size()%index.EntrySize != 0 {
		return sh.mismatch("index %s: its size, %d bytes, is not a multiple of %d: it is truncated or not an index",
			o.IndexPath, indexInfo.Size(), index.EntrySize)
	}
	sh.entries = indexInfo.Size() / index.EntrySize
	if err := sh.setRange(o); err != nil {
		return err
	}
	if err := sh.check(); err != nil {
		return err
	}
	h := fnv.New64a()
	fmt.Fprint(h, dataInfo.Size(), dataInfo.ModTime().UnixNano(), indexInfo.Size(), indexInfo.ModTime().UnixNano(), sh.line0)
	// File times alone miss new data of the same size whose times were
	// normalised (image builds often set every file's time to one value):
	// samples of both files' bytes go into the tag too.
	for _, f := range []struct {
		f    *os.File
		size int64
	}{{sh.data, sh.dataSize}, {sh.index, indexInfo.Size()}} {
		if err := sample(h, f.f, f.size); err != nil {
			return fmt.Errorf("%s: %w", f.f.Name(), err)
		}
	}
	sh.tag = strconv.FormatUint(h.Sum64(), 36)
	return nil
}

// sampleBlocks blocks of sampleSize bytes, spread evenly over a file from
// its first byte to its last, go into a shard's tag: 16 reads of a few
// KiB at cold start, whatever the file's size.
const sampleBlocks, sampleSize = 16, 512

// sample writes blocks of f, of size bytes, to w.
func sample(w io.Writer, f *os.File, size int64) error {
	var buf [sampleSize]byte
	for k := int64(0); k < sampleBlocks; k++ {
		at := max(0, (size-sampleSize)*k/(sampleBlocks-1))
		n, err := f.ReadAt(buf[:min(sampleSize, size-at)], at)
		if err != nil && err != io.EOF {
			return err
		}
		w.Write(buf[:n])
	}
	return nil
}

func regular(f *os.File, what string) (os.FileInfo, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s %s is not a regular file", ErrMismatch, what, f.Name())
	}
	return fi, nil
}

func (sh *Shard) mismatch(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMismatch}, args...)...)
}

// Close closes the files.
func (sh *Shard) Close() error {
	sh.guard.stop()
	var errs []error
	for _, f := range []*os.File{sh.data, sh.index} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	return errors.Join(errs...)
}

// First is the first line the shard serves.
func (sh *Shard) First() int64 { return sh.first }

// Last is the last line the shard serves; below First for an empty file.
func (sh *Shard) Last() int64 { return sh.last }

// Total is the number of lines of the whole file; 0 with TotalKnown false
// for a slice that was not told.
func (sh *Shard) Total() int64 { return sh.total }

// TotalKnown says whether Total is known: without it, negative numbers and
// numbers past Last are another shard's (421).
func (sh *Shard) TotalKnown() bool { return sh.totalKnown }

// Layout says what the index was found to be and what gave the range, for
// the log: "whole file", "first slice", "slice", "slice (manifest.json)".
func (sh *Shard) Layout() string { return sh.layout }

// Tag identifies the generation of the files (their sizes and times), for
// ETags; it changes when either file is rewritten.
func (sh *Shard) Tag() string { return sh.tag }

// Ready is nil while the shard has found nothing wrong with its files since
// it opened them, and the first ErrDamaged error after that.
func (sh *Shard) Ready() error {
	if p := sh.damaged.Load(); p != nil {
		return *p
	}
	return nil
}

func (sh *Shard) damage(format string, args ...any) error {
	err := fmt.Errorf("%w: "+format, append([]any{ErrDamaged}, args...)...)
	sh.damaged.CompareAndSwap(nil, &err)
	return err
}

// Resolve turns a parsed line number (negative counts from the end) into
// the positive number of a line this shard serves. Its errors wrap
// lineno.ErrBeyondEnd or lineno.ErrNotHere.
func (sh *Shard) Resolve(n int64) (int64, error) {
	if !sh.totalKnown && n < 0 {
		return 0, fmt.Errorf("line %d: %w; this one serves lines %d to %d and was not told how many lines the file has",
			n, lineno.ErrNotHere, sh.first, sh.last)
	}
	if !sh.totalKnown {
		return n, lineno.Within(n, sh.first, sh.last)
	}
	n, err := lineno.Resolve(n, sh.total)
	if err != nil {
		return 0, err
	}
	return n, lineno.Within(n, sh.first, sh.last)
}

// Locate finds line n, which Resolve returned, with one read of the index.
// It does not allocate.
func (sh *Shard) Locate(n int64) (Span, error) {
	i := n - sh.line0
	var buf [2 * index.EntrySize]byte
	entries := buf[:]
	if i+1 >= sh.entries {
		entries = buf[:index.EntrySize]
	}
	if _, err := sh.index.ReadAt(entries, i*index.EntrySize); err != nil {
		return Span{}, sh.damage("index %s: reading the entry of line %d: %v", sh.indexPath, n, err)
	}
	start, err := index.ParseEntry(entries[:index.EntrySize])
	if err != nil {
		return Span{}, sh.damage("index %s: the entry of line %d: %v", sh.indexPath, n, err)
	}
	sp := Span{Start: start - sh.base, End: sh.dataSize, Unterminated: n == sh.total}
	if len(entries) > index.EntrySize {
		end, err := index.ParseEntry(entries[index.EntrySize:])
		if err != nil {
			return Span{}, sh.damage("index %s: the entry after line %d: %v", sh.indexPath, n, err)
		}
		sp.End, sp.Unterminated = end-sh.base, false
	}
	if sp.Start < 0 || sp.Start >= sp.End || sp.End > sh.dataSize {
		return Span{}, sh.damage("index %s: line %d at bytes [%d, %d) does not fit data %s of %d bytes",
			sh.indexPath, n, sp.Start, sp.End, sh.dataPath, sh.dataSize)
	}
	return sp, nil
}

// Chunk reads the bytes of line sp from byte off of the line on into buf,
// at most len(buf)-1 of them, and returns them once checked: the byte
// before the line is '\n', no '\n' stands inside it, and it ends with '\n'
// unless it is the file's last line. So a line that changed under the shard
// fails with ErrDamaged instead of being served wrong.
func (sh *Shard) Chunk(buf []byte, sp Span, off int64) ([]byte, error) {
	n := min(int64(len(buf)-1), sp.Len()-off)
	if n <= 0 {
		return nil, fmt.Errorf("chunk at %d of a %d-byte line with a %d-byte buffer", off, sp.Len(), len(buf))
	}
	pos, lead := sp.Start+off, int64(0)
	if off == 0 && sp.Start > 0 {
		pos, lead = pos-1, 1
	}
	p := buf[:lead+n]
	if _, err := sh.data.ReadAt(p, pos); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, sh.damage("data %s: ends before byte %d: it was truncated", sh.dataPath, pos+int64(len(p)))
		}
		return nil, fmt.Errorf("data %s: %w", sh.dataPath, err)
	}
	if err := sh.unchanged(); err != nil {
		return nil, err
	}
	if lead == 1 && p[0] != '\n' {
		return nil, sh.damage("data %s: the byte before line start %d is %q, not '\\n': the data changed", sh.dataPath, sp.Start, p[0])
	}
	p = p[lead:]
	last := off+n == sp.Len()
	body := p
	if last && (p[n-1] == '\n' || !sp.Unterminated) {
		if p[n-1] != '\n' {
			return nil, sh.damage("data %s: the line at byte %d does not end with '\\n': the data changed", sh.dataPath, sp.Start)
		}
		body = p[:n-1]
	}
	if i := indexNewline(body); i >= 0 {
		return nil, sh.damage("data %s: a '\\n' at byte %d, inside the line at byte %d: the data changed", sh.dataPath, pos+lead+int64(i), sp.Start)
	}
	return p, nil
}
