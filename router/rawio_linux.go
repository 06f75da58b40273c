package router

import (
	"io"
	"net"
	"os"
	"syscall"
)

// rawConn is a socket whose reads and writes make their system calls
// without the Go scheduler's entersyscall and exitsyscall: the socket is
// non-blocking, so each call returns at once, and waiting for it to be
// readable or writable still goes through the runtime's poller.
//
// The reason is CPU, measured under load on a two-core machine. A
// goroutine in an ordinary system call lets the runtime's monitor thread
// (sysmon) take its P away when the call outlasts a monitor tick (20 µs at
// first), as a write over loopback does when the kernel preempts the
// thread in the middle of it on a busy machine. Every such retake hands
// the P to another thread and sends the monitor back to waking every
// 20 µs for the next millisecond: about a thousand sleeps and wakeups a
// second, each a context switch, some 5% of a core on its own. A raw call
// keeps the P, so the monitor stays at its idle pace. The calls are also
// cheaper by the scheduler's bookkeeping.
type rawConn struct {
	net.Conn
	rc syscall.RawConn
	// The state of the call in progress; reads and writes each have their
	// own, as net.Conn allows one of each at once.
	rp, wp      []byte
	rn, wn      int
	rerr, werr  error
	awaiting    bool
	read, write func(fd uintptr) bool
	await       func(fd uintptr) bool
}

// newRawConn returns c with raw reads and writes, or c itself when it is
// not a socket.
func newRawConn(c net.Conn) net.Conn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	r := &rawConn{Conn: c, rc: rc}
	r.read, r.write, r.await = r.doRead, r.doWrite, r.doAwait
	return r
}

func (r *rawConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.rp, r.rn, r.rerr = p, 0, nil
	err := r.rc.Read(r.read)
	r.rp = nil
	if err != nil {
		return 0, err
	}
	return r.rn, r.rerr
}

// doRead reads once; it reports false to wait for the socket to be
// readable.
func (r *rawConn) doRead(fd uintptr) bool {
	for {
		n, errno := recv(int(fd), r.rp)
		switch errno {
		case 0:
			if n == 0 {
				r.rerr = io.EOF
			}
			r.rn = n
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		r.rerr = os.NewSyscallError("read", errno)
		return true
	}
}

func (r *rawConn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.wp, r.wn, r.werr = p, 0, nil
	err := r.rc.Write(r.write)
	r.wp = nil
	if err == nil {
		err = r.werr
	}
	return r.wn, err
}

// doWrite writes all it can; it reports false to wait for the socket to
// be writable before it writes the rest.
func (r *rawConn) doWrite(fd uintptr) bool {
	for len(r.wp) > 0 {
		n, errno := send(int(fd), r.wp)
		switch errno {
		case 0:
			r.wn += n
			r.wp = r.wp[n:]
			continue
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		r.werr = os.NewSyscallError("write", errno)
		return true
	}
	return true
}

// CloseWrite half-closes a TCP connection.
func (r *rawConn) CloseWrite() error {
	if cw, ok := r.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// writeAwait writes p and then waits until the socket is readable (or its
// read deadline passes), without the read that a plain Read would try
// first and that finds nothing when the peer has yet to answer: one
// system call less per request. It is for a connection that carries one
// request at a time and whose previous answer was read to its end: the
// wait starts before the write, so the answer cannot come unnoticed, and
// anything that came before it (a close of the idle connection by the
// peer) makes the peer answer the write with a reset, which ends the
// wait too.
func (r *rawConn) writeAwait(p []byte) error {
	r.wp, r.wn, r.werr, r.awaiting = p, 0, nil, false
	err := r.rc.Read(r.await)
	r.wp = nil
	if err == nil {
		err = r.werr
	}
	return err
}

// doAwait is writeAwait's step: the first call writes, the next one (after
// the socket became readable) ends the wait.
func (r *rawConn) doAwait(fd uintptr) bool {
	if r.awaiting {
		return true
	}
	r.awaiting = true
	if !r.doWrite(fd) {
		// The socket's buffer is full (hardly ever, for a short
		// request): write the rest the ordinary way.
		if err := r.rc.Write(r.write); err != nil && r.werr == nil {
			r.werr = err
		}
	}
	return r.werr != nil
}

// rawRead reads once from the socket fd; it returns errWouldBlock when
// the socket has nothing to read.
func rawRead(fd int, p []byte) (int, error) {
	for {
		n, errno := recv(fd, p)
		switch errno {
		case 0:
			if n == 0 {
				return 0, io.EOF
			}
			return n, nil
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return 0, errWouldBlock
		}
		return 0, os.NewSyscallError("read", errno)
	}
}

// readLoop calls step with nc's socket each time the socket may have
// become readable, until step returns true. It runs inside one
// RawConn.Read, whose readiness state is reset once at its start rather
// than before each read as net.Conn's Read does; so step can wait (return
// false) as soon as a read found the socket empty, without a read that
// is bound to find nothing, and no readiness notification is lost between
// two waits. step reads the socket itself, with rawRead. The error is
// that of the wait: a deadline or a closed connection.
func readLoop(nc net.Conn, step func(fd int) bool) error {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return plainLoop(step)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return plainLoop(step)
	}
	return rc.Read(func(fd uintptr) bool { return step(int(fd)) })
}
