package shard

import (
	"bytes"
	"fmt"
	"io"
	"syscall"

	"github.com/lineserver/lineserver/internal/index"
)

// samples is how many index entries Open checks against the data, spread
// evenly over the shard's range: enough to catch an index of another file
// or of an older version, few enough to take milliseconds on any file.
const samples = 64

// edge is how many bytes Open reads at each end of the last line.
const edge = 64 << 10

func indexNewline(b []byte) int { return bytes.IndexByte(b, '\n') }

// entry reads index entry i.
func (sh *Shard) entry(i int64) (int64, error) {
	var b [index.EntrySize]byte
	if _, err := sh.index.ReadAt(b[:], i*index.EntrySize); err != nil {
		return 0, fmt.Errorf("index %s: entry %d: %w", sh.indexPath, i, err)
	}
	off, err := index.ParseEntry(b[:])
	if err != nil {
		return 0, sh.mismatch("index %s: entry %d is %q: %v", sh.indexPath, i, b[:], err)
	}
	return off, nil
}

// check arms the shard's guard, which keeps watching the files from then
// on, and compares a sample of the index with the data: each sampled line
// starts inside the data right after a '\n', in increasing order, and the
// data's last line holds no '\n' but at its end.
func (sh *Shard) check() error {
	if err := sh.arm(); err != nil {
		return err
	}
	if sh.last < sh.first {
		return nil
	}
	lo, hi := sh.first-sh.line0, sh.last-sh.line0
	if hi+1 < sh.entries {
		hi++ // the entry after the last line ends it
	}
	prev, prevAt := int64(-1), int64(-1)
	for k := int64(0); k < samples; k++ {
		i := lo + (hi-lo)*k/(samples-1)
		if i == prevAt {
			continue
		}
		e, err := sh.entry(i)
		if err != nil {
			return err
		}
		off := e - sh.base
		if off < 0 || off >= sh.dataSize || off <= prev {
			return sh.mismatch("index %s does not fit data %s (%d bytes): entry %d says line %d starts at byte %d%s; "+
				"was the index built for this file? (lines verify tells)",
				sh.indexPath, sh.dataPath, sh.dataSize, i, sh.line0+i, off, order(off <= prev))
		}
		if off > 0 {
			var b [1]byte
			if _, err := sh.data.ReadAt(b[:], off-1); err != nil {
				return fmt.Errorf("data %s: %w", sh.dataPath, err)
			}
			if b[0] != '\n' {
				return sh.mismatch("index %s does not fit data %s: line %d starts at byte %d, but the byte before it is %q, not '\\n'; "+
					"was the index built for this file? (lines verify tells)", sh.indexPath, sh.dataPath, sh.line0+i, off, b[0])
			}
		}
		prev, prevAt = off, i
	}
	if sh.last-sh.line0+1 == sh.entries {
		if err := sh.checkFinalNewline(); err != nil {
			return err
		}
		return sh.checkLastLine(prev)
	}
	if sh.line0 == 1 && sh.total == sh.entries {
		// A range of a whole file: the file has exactly as many lines as
		// the index has entries, which its last entry and line tell.
		return sh.checkEnd()
	}
	return nil
}

// checkEnd checks the last entry of a whole file's index and the data's
// last line after it.
func (sh *Shard) checkEnd() error {
	i := sh.entries - 1
	e, err := sh.entry(i)
	if err != nil {
		return err
	}
	off := e - sh.base
	if off < 0 || off >= sh.dataSize {
		return sh.mismatch("index %s does not fit data %s (%d bytes): its last entry says line %d starts at byte %d; "+
			"was the index built for this file? (lines verify tells)", sh.indexPath, sh.dataPath, sh.dataSize, i+1, off)
	}
	if off > 0 {
		var b [1]byte
		if _, err := sh.data.ReadAt(b[:], off-1); err != nil {
			return fmt.Errorf("data %s: %w", sh.dataPath, err)
		}
		if b[0] != '\n' {
			return sh.mismatch("index %s does not fit data %s: its last line, %d, starts at byte %d, but the byte before it is %q, not '\\n'; "+
				"was the index built for this file? (lines verify tells)", sh.indexPath, sh.dataPath, i+1, off, b[0])
		}
	}
	return sh.checkLastLine(off)
}

// checkFinalNewline: the data's last line is the shard's last, so unless
// it is the whole file's last line it must end with '\n'; otherwise the
// settings say the file goes on after data that ends mid-line.
func (sh *Shard) checkFinalNewline() error {
	if sh.last == sh.total {
		return nil
	}
	var b [1]byte
	if _, err := sh.data.ReadAt(b[:], sh.dataSize-1); err != nil {
		return fmt.Errorf("data %s: %w", sh.dataPath, err)
	}
	if b[0] != '\n' {
		return sh.mismatch("data %s does not end with '\\n', so its last line, %d, is the last of the file, "+
			"but FILE_TOTAL_LINES=%d says the file goes on: check FILE_TOTAL_LINES and INDEX_LAST_LINE_NUMBER",
			sh.dataPath, sh.last, sh.total)
	}
	return nil
}

func order(backwards bool) string {
	if backwards {
		return ", not after the line before it"
	}
	return ""
}

// checkLastLine reads the first and last bytes of the data's last line,
// from start on: a '\n' there before the end means the data holds lines the
// index does not.
func (sh *Shard) checkLastLine(start int64) error {
	buf := make([]byte, edge)
	for _, from := range []int64{start, max(start, sh.dataSize-edge)} {
		p := buf[:min(edge, sh.dataSize-from)]
		if _, err := sh.data.ReadAt(p, from); err != nil && err != io.EOF {
			return fmt.Errorf("data %s: %w", sh.dataPath, err)
		}
		body := p
		if from+int64(len(p)) == sh.dataSize {
			body = bytes.TrimSuffix(p, []byte{'\n'})
		}
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			return sh.mismatch("data %s has more lines than index %s: a line starts at byte %d after the index's last entry; "+
				"rebuild the index (lines index)", sh.dataPath, sh.indexPath, from+int64(i)+1)
		}
	}
	return nil
}

// fileState is what a file's fstat says about its contents.
type fileState struct {
	fd          int
	size        int64
	mtime, ctim syscall.Timespec
}

func stateOf(fd int) (fileState, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return fileState{}, err
	}
	return fileState{fd: fd, size: st.Size, mtime: st.Mtim, ctim: st.Ctim}, nil
}
