package shard

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"golang.org/x/sys/unix"
)

// A guard keeps a shard from serving bytes of files that changed after it
// checked them. Two things watch each file:
//
//   - A read lease (fcntl F_SETLEASE), where the kernel grants one: any
//     open of the file for writing, and any truncation, then waits in the
//     kernel until the shard has marked itself damaged and let the lease
//     go. A request checks the mark after its reads, so a read that saw a
//     changed byte always sees the mark: the request path pays one atomic
//     load and no system call.
//   - Where there is no lease (a file the process does not own without
//     CAP_LEASE, a file already open for writing elsewhere, a filesystem
//     not known to keep leases, such as FUSE or NFS), fstat after the reads,
//     as before: the kernel updates a file's mtime before it copies a
//     write's bytes, so a read that saw them sees the new time.
//
// An inotify watcher (fsnotify) on both files and on their folders marks
// the shard damaged, with no request needed, on any write, truncation,
// change of attributes, delete or rename of either file, and on a rename or
// a new file onto either path. A file replaced by rename keeps its old
// bytes under the shard's descriptor, consistent with the old index, and
// is served until the watcher's event marks the shard; so the watcher is
// what turns /readyz to 503 then, not what keeps the bytes exact. It alone
// could not: the kernel queues its event after the write's bytes are in
// the file, and the event reaches the shard later still.
type guard struct {
	files   [2]guarded
	watcher *fsnotify.Watcher
	// dirs are the folders of the files, watched for renames onto their
	// paths.
	dirs  []string
	sigio chan os.Signal
	done  chan struct{}
	wg    sync.WaitGroup
}

type guarded struct {
	f    *os.File
	fd   int
	path string // absolute
	// leased is set when the kernel granted a read lease; it is cleared
	// only before the guard starts.
	leased bool
	state  fileState
}

// keepsLeases reports whether a filesystem (its statfs magic number) is
// one whose leases every open for writing breaks, because every write is
// made through this kernel: ext2/3/4, XFS, Btrfs, tmpfs. On network and
// FUSE filesystems a lease says nothing of writes made elsewhere.
func keepsLeases(fsType int64) bool {
	switch fsType {
	case unix.EXT4_SUPER_MAGIC, unix.XFS_SUPER_MAGIC, unix.BTRFS_SUPER_MAGIC, unix.TMPFS_MAGIC:
		return true
	}
	return false
}

// arm starts guarding the shard's open files. It takes their state before
// Open's checks read them, so a change during the checks is caught too.
func (sh *Shard) arm() error {
	g := &sh.guard
	for i, f := range []*os.File{sh.data, sh.index} {
		path, err := filepath.Abs(f.Name())
		if err != nil {
			return err
		}
		g.files[i] = guarded{f: f, fd: int(f.Fd()), path: path}
		if g.files[i].state, err = stateOf(g.files[i].fd); err != nil {
			return fmt.Errorf("%s: %w", f.Name(), err)
		}
	}
	g.sigio = make(chan os.Signal, 1)
	signal.Notify(g.sigio, syscall.SIGIO)
	if delivered(g.sigio) {
		for i := range g.files {
			g.files[i].leased = lease(g.files[i].fd)
		}
	}
	if w, err := g.watch(); err == nil {
		g.watcher = w
	}
	// Without a watcher (no inotify here, or no instance left), leases and
	// fstat still keep every answer exact; only a rename onto a path goes
	// unnoticed until a restart.
	g.done = make(chan struct{})
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		sh.guardLoop()
	}()
	return nil
}

// sigioWait is how long arm waits for a SIGIO it sent itself.
const sigioWait = 2 * time.Second

// delivered sends the process a SIGIO and reports whether it reached ch:
// a lease is only as good as the break notice, and a process that has
// SIGIO blocked would let a writer through after the kernel's
// lease-break-time without the shard knowing.
func delivered(ch <-chan os.Signal) bool {
	if err := syscall.Kill(os.Getpid(), syscall.SIGIO); err != nil {
		return false
	}
	select {
	case <-ch:
		return true
	case <-time.After(sigioWait):
		return false
	}
}

// lease takes a read lease on fd, if its filesystem keeps them, and reports
// whether the kernel granted it.
func lease(fd int) bool {
	var fs syscall.Statfs_t
	if err := syscall.Fstatfs(fd, &fs); err != nil || !keepsLeases(int64(fs.Type)) {
		return false
	}
	// The lease's break notice, SIGIO, goes to this process.
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETOWN, os.Getpid()); err != nil {
		return false
	}
	_, err := unix.FcntlInt(uintptr(fd), unix.F_SETLEASE, unix.F_RDLCK)
	return err == nil
}

func (g *guard) watch() (*fsnotify.Watcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	for _, f := range g.files {
		dir := filepath.Dir(f.path)
		if len(g.dirs) == 0 || g.dirs[0] != dir {
			g.dirs = append(g.dirs, dir)
		}
		for _, p := range []string{f.path, dir} {
			if err := w.Add(p); err != nil {
				w.Close()
				return nil, err
			}
		}
	}
	return w, nil
}

func (sh *Shard) guardLoop() {
	g := &sh.guard
	var events <-chan fsnotify.Event
	var errs <-chan error
	if g.watcher != nil {
		events, errs = g.watcher.Events, g.watcher.Errors
	}
	for {
		select {
		case <-g.done:
			return
		case <-g.sigio:
			sh.leaseBroken()
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if what := g.concerns(ev); what != "" {
				sh.damage("%s %s changed after the shard opened it (inotify: %s): restart the shard on the new files", what, ev.Name, ev.Op)
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Events were lost: some may have been of these files.
				sh.damage("watching %s and %s: %v: restart the shard", g.files[0].path, g.files[1].path, err)
			}
		}
	}
}

// concerns says what an event is about when it is about one of the
// shard's files or folders, and "" when it is about another file.
func (g *guard) concerns(ev fsnotify.Event) string {
	for _, f := range g.files {
		if ev.Name == f.path {
			return "file"
		}
	}
	for _, d := range g.dirs {
		if ev.Name == d && ev.Has(fsnotify.Remove|fsnotify.Rename) {
			return "the folder"
		}
	}
	return ""
}

// leaseBroken handles a SIGIO: a lease whose break is pending means a
// process is opening that file for writing or truncating it, and waits
// until the lease is let go. The shard is marked damaged first.
func (sh *Shard) leaseBroken() {
	for i := range sh.guard.files {
		f := &sh.guard.files[i]
		if !f.leased {
			continue
		}
		fd := uintptr(f.fd)
		if l, err := unix.FcntlInt(fd, unix.F_GETLEASE, 0); err == nil && l == unix.F_RDLCK {
			continue // the signal was for another file
		}
		sh.damage("%s is being written or truncated after the shard opened it: restart the shard on the new files", f.path)
		unix.FcntlInt(fd, unix.F_SETLEASE, unix.F_UNLCK)
	}
}

// unchanged reports the damage found so far, after checking with fstat the
// files that have no lease. Chunk calls it after each read of the data,
// which comes after Locate's read of the index, so the entries and bytes
// it used were those of the checked files: a rewrite that keeps every
// line's length, or an index shifted by a line, would pass every other
// check. It does not allocate.
func (sh *Shard) unchanged() error {
	for i := range sh.guard.files {
		was := &sh.guard.files[i]
		if was.leased {
			continue
		}
		now, err := stateOf(was.fd)
		if err != nil {
			return fmt.Errorf("%s: %w", was.path, err)
		}
		if now.size != was.state.size || now.mtime != was.state.mtime || now.ctim != was.state.ctim {
			return sh.damage("%s changed after the shard opened it (size %d, now %d): restart the shard on the new files",
				was.path, was.state.size, now.size)
		}
	}
	return sh.Ready()
}

// stop ends the guard's watching and lets its leases go.
func (g *guard) stop() {
	if g.done == nil {
		return
	}
	close(g.done)
	g.wg.Wait()
	signal.Stop(g.sigio)
	if g.watcher != nil {
		g.watcher.Close()
	}
	for i := range g.files {
		if g.files[i].leased {
			unix.FcntlInt(uintptr(g.files[i].fd), unix.F_SETLEASE, unix.F_UNLCK)
		}
	}
	g.done = nil
}

// Guard says how the shard keeps its answers exact, for its log: by lease
// or fstat for each file, and whether a watcher turns it not ready.
func (sh *Shard) Guard() string {
	g := &sh.guard
	how := func(f guarded) string {
		if f.leased {
			return "lease"
		}
		return "fstat"
	}
	w := "no watcher"
	if g.watcher != nil {
		w = "inotify"
	}
	return fmt.Sprintf("data: %s, index: %s, %s", how(g.files[0]), how(g.files[1]), w)
}
