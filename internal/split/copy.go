package split

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/lineserver/lineserver/internal/atomicfile"
)

// copyRound is how much Copy copies between checks of its context.
const copyRound = 256 << 20

// Copy writes bytes from to to of src to a new file at path. It copies
// from file to file so that Linux does it in the kernel (copy_file_range,
// which shares the blocks on file systems that can), writes to a temporary
// file in path's folder and renames it to path when complete, so a failed
// or interrupted copy leaves nothing under path. Progress, when not nil,
// is called with the number of bytes copied so far. Copy moves src's file
// offset.
func Copy(ctx context.Context, src *os.File, from, to int64, path string, progress func(done int64)) (err error) {
	return atomicfile.Write(path, func(tmp *os.File) error {
		if _, err := src.Seek(from, io.SeekStart); err != nil {
			return fmt.Errorf("seek in %s: %w", src.Name(), err)
		}
		for done := int64(0); done < to-from; {
			if err := ctx.Err(); err != nil {
				return err
			}
			// *os.File.ReadFrom sees an io.LimitedReader of an *os.File and
			// uses copy_file_range.
			n, err := io.Copy(tmp, io.LimitReader(src, min(copyRound, to-from-done)))
			if err != nil {
				return fmt.Errorf("copy %s to %s: %w", src.Name(), path, err)
			}
			if n == 0 {
				return fmt.Errorf("copy %s to %s: the file ends at byte %d, before byte %d: was it changed?", src.Name(), path, from+done, to)
			}
			done += n
			if progress != nil {
				progress(done)
			}
		}
		return nil
	})
}
