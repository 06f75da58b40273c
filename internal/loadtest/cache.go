package loadtest

import (
	"context"
	"errors"
	"io"
	"os"
	"syscall"
	"unsafe"
)

// resident returns the fraction of the file at path that is in the page
// cache, as mincore(2) sees it through a read-only mapping (which faults
// nothing in). An empty file counts as cached.
func resident(path string) (float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if fi.Size() == 0 {
		return 1, nil
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, int(fi.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return 0, err
	}
	defer syscall.Munmap(m)
	vec := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
	_, _, errno := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0])))
	if errno != 0 {
		return 0, errno
	}
	var in int
	for _, v := range vec {
		in += int(v & 1)
	}
	return float64(in) / float64(len(vec)), nil
}

// warm reads the file at path once, so that its pages are in the page
// cache, unless they nearly all are already. progress, if not nil, is
// called with the bytes read and the file's size.
func warm(ctx context.Context, path string, progress func(done, total int64)) error {
	if r, err := resident(path); err != nil || r >= 0.999 {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	buf := make([]byte, 8<<20)
	var done int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := f.Read(buf)
		done += int64(n)
		if progress != nil {
			progress(done, fi.Size())
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
