//go:build linux && race

package router

import "syscall"

// recv and send, under the race detector, go through syscall.Read and
// syscall.Write, which tell the detector that a write to a socket happens
// before the read that gets its bytes (raw system calls would not, and
// tests that synchronize through a socket would report races).
func recv(fd int, p []byte) (int, syscall.Errno) {
	n, err := syscall.Read(fd, p)
	return max(n, 0), errno(err)
}

func send(fd int, p []byte) (int, syscall.Errno) {
	n, err := syscall.Write(fd, p)
	return max(n, 0), errno(err)
}

func errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	return err.(syscall.Errno)
}
