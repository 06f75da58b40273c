package index

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"

	"github.com/lineserver/lineserver/internal/atomicfile"
)

// Options tunes Build, BuildFile and Verify. The zero value is ready to use.
type Options struct {
	// Progress, when not nil, is called from the caller's goroutine after
	// each chunk with the number of data bytes done so far.
	Progress func(done int64)
	// Workers is the number of goroutines that scan chunks; 0 means
	// GOMAXPROCS.
	Workers int
	// ChunkSize is the number of data bytes read and scanned at a time;
	// 0 means 256 KiB. Tests use tiny chunks to cross many chunk borders.
	ChunkSize int
	// FirstLine is the number of the line of entry 0 in Verify's messages;
	// 0 means 1. A shard's slice sets its first line.
	FirstLine int64
	// Shift is added to every offset Build writes: 0 for a whole file, the
	// offset of a slice's first byte in the whole file for a slice that
	// keeps the whole file's offsets. Verify takes it from entry 0 instead.
	Shift int64
}

// defaultChunkSize was chosen by measurement (chunk sizes from 64 KiB to
// 1 MiB, timed against each other with make bench-index's file): 256 KiB
// chunks were fastest, likely because a chunk just copied in by read is
// still in a core's L2 cache when a worker scans it, while system calls
// and channel hand-offs stay few.
const defaultChunkSize = 256 << 10

// Build reads data to its end and writes its index to w. It returns the
// number of lines. Data is read in large chunks that are scanned in
// parallel and written in order, so memory stays bounded whatever the size
// of the data. It fails with ErrOffsetTooLarge when a line starts beyond
// MaxOffset, and with ctx's error when ctx is done.
func Build(ctx context.Context, data io.Reader, w io.Writer, opt Options) (lines int64, err error) {
	err = scan(ctx, data, opt.Shift, opt, func(entries []byte) error {
		if _, err := w.Write(entries); err != nil {
			return fmt.Errorf("write index: %w", err)
		}
		lines += int64(len(entries) / EntrySize)
		return nil
	})
	return lines, err
}

// BuildFile builds the index of data into the file at path. It writes to a
// temporary file in path's folder and renames it to path only when the
// index is complete, so an interrupted or failed build never leaves a
// partial index under the real name; the temporary file is removed.
func BuildFile(ctx context.Context, path string, data io.Reader, opt Options) (lines int64, err error) {
	err = atomicfile.Write(path, func(f *os.File) error {
		lines, err = Build(ctx, data, f, opt)
		return err
	})
	return lines, err
}

// chunk is one piece of the data on its way through scan's pipeline.
type chunk struct {
	buf  []byte
	data []byte // buf[:n], the bytes read
	pos  int64  // position of data[0] in the data
	// out holds the entries of the lines that start inside data after its
	// first byte, behind EntrySize bytes kept free for the entry of data[0].
	out  []byte
	err  error
	done chan struct{}
}

// scan reads data in chunks, finds the line starts in parallel, and calls
// emit in order with the entries of each chunk, every offset plus shift.
// Entries are only valid during the call. Data that fits in one chunk is
// scanned without starting goroutines.
func scan(ctx context.Context, data io.Reader, shift int64, opt Options, emit func(entries []byte) error) error {
	size := opt.ChunkSize
	if size <= 0 {
		size = defaultChunkSize
	}
	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	depth := 2*workers + 2
	sink := &sink{shift: shift, emit: emit, progress: opt.Progress, startsLine: true}

	first := &chunk{buf: make([]byte, size)}
	if more := fill(data, first, 0); !more {
		if first.err == nil {
			first.out, first.err = appendEntries(first.out, first.data, shift)
		}
		if first.err != nil {
			return first.err
		}
		if len(first.data) > 0 {
			if err := sink.take(first); err != nil {
				return err
			}
		}
		return ctx.Err()
	}

	free := make(chan *chunk, depth)
	work := make(chan *chunk, depth)
	order := make(chan *chunk, depth)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() {
		close(stop)
		wg.Wait()
	}()
	wg.Go(func() { read(data, first, depth, free, work, order, stop) })
	for range workers {
		wg.Go(func() {
			for c := range work {
				c.out, c.err = appendEntries(c.out[:0], c.data, shift+c.pos)
				close(c.done)
			}
		})
	}
	for c := range order {
		select {
		case <-c.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if c.err != nil {
			return c.err
		}
		if err := sink.take(c); err != nil {
			return err
		}
		free <- c
	}
	return ctx.Err()
}

// sink takes the scanned chunks in order.
type sink struct {
	shift      int64
	emit       func(entries []byte) error
	progress   func(done int64)
	startsLine bool // whether the next chunk's first byte starts a line
	done       int64
}

// take emits the entries of c, with the entry of its first byte when that
// starts a line, which only the previous chunk tells.
func (s *sink) take(c *chunk) error {
	entries := c.out[EntrySize:]
	if s.startsLine {
		off := s.shift + c.pos
		if off > MaxOffset {
			return fmt.Errorf("line starting at byte %d: %w", c.pos, ErrOffsetTooLarge)
		}
		PutEntry(c.out, off)
		entries = c.out
	}
	if err := s.emit(entries); err != nil {
		return err
	}
	s.startsLine = c.data[len(c.data)-1] == '\n'
	s.done += int64(len(c.data))
	if s.progress != nil {
		s.progress(s.done)
	}
	return nil
}

// fill reads the chunk at pos into c and reports whether more data may
// follow: false at the end of data or on a read error, which it puts in
// c.err.
func fill(data io.Reader, c *chunk, pos int64) (more bool) {
	n, err := io.ReadFull(data, c.buf)
	c.data, c.pos, c.err, c.done = c.buf[:n], pos, nil, make(chan struct{})
	switch {
	case err == nil:
		return true
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return false
	}
	c.err = fmt.Errorf("read data: %w", err)
	return false
}

// read hands first and then the chunks it fills, in order, to the workers
// and to the consumer. It makes up to depth chunks of first's size, as they
// are needed, and then reuses those that come back on free. A read error
// travels as a chunk.
func read(data io.Reader, first *chunk, depth int, free <-chan *chunk, work, order chan<- *chunk, stop <-chan struct{}) {
	defer close(order)
	defer close(work)
	c, made, more := first, 1, true
	for pos := int64(len(first.data)); ; pos += int64(len(c.data)) {
		if c.err != nil {
			close(c.done)
		}
		if len(c.data) > 0 || c.err != nil {
			select {
			case order <- c:
			case <-stop:
				return
			}
		}
		if c.err != nil {
			return
		}
		if len(c.data) > 0 {
			work <- c // never blocks: work holds as many chunks as exist
		}
		if !more {
			return
		}
		select {
		case c = <-free:
		case <-stop:
			return
		default:
			if made < depth {
				c = &chunk{buf: make([]byte, len(first.buf))}
				made++
				break
			}
			select {
			case c = <-free:
			case <-stop:
				return
			}
		}
		more = fill(data, c, pos)
	}
}

// appendEntries appends EntrySize free bytes, then the entries of the line
// starts in data after its first byte, data[0] being at offset base.
func appendEntries(out, data []byte, base int64) ([]byte, error) {
	out = append(out, make([]byte, EntrySize)...)
	// An entry is the 8 digits of off/1e4, kept in hiDigits while they stay
	// the same, then the 4 digits of off%1e4 from a table.
	hiBase := int64(-1e4) // (off/1e4)*1e4 for the offsets in hiDigits
	var hiDigits uint64
	for i := 0; ; {
		j := bytes.IndexByte(data[i:], '\n')
		if j < 0 {
			return out, nil
		}
		i += j + 1
		if i == len(data) {
			// A '\n' ending the chunk: whether a line starts after it is
			// known only once the next chunk is read.
			return out, nil
		}
		off := base + int64(i)
		lo := off - hiBase
		if uint64(lo) >= 1e4 {
			if off > MaxOffset {
				return out, fmt.Errorf("line starting at byte %d: %w", off-base, ErrOffsetTooLarge)
			}
			hi := off / 1e4
			hiBase, lo = hi*1e4, off%1e4
			hiDigits = uint64(digits4[hi/1e4]) | uint64(digits4[hi%1e4])<<32
		}
		n := len(out)
		if n+EntrySize > cap(out) {
			out = append(out, make([]byte, EntrySize+len(data)/8)...)
		}
		out = out[:n+EntrySize]
		e := out[n : n+EntrySize]
		binary.LittleEndian.PutUint64(e, hiDigits)
		binary.LittleEndian.PutUint32(e[8:], digits4[lo])
		e[12] = '\n'
	}
}

// digits4[n] holds the 4 ASCII digits of n, zero-padded, first digit in the
// lowest byte, to be stored little-endian.
var digits4 = func() (t [1e4]uint32) {
	for n := range t {
		t[n] = uint32('0'+n/1000) | uint32('0'+n/100%10)<<8 | uint32('0'+n/10%10)<<16 | uint32('0'+n%10)<<24
	}
	return t
}()
