//go:build !linux

package router

import "net"

// newRawConn returns c: raw system calls are for Linux (see rawio_linux.go).
func newRawConn(c net.Conn) net.Conn { return c }

// readLoop calls step until it returns true; step reads the connection
// itself, with plain reads (fd -1).
func readLoop(_ net.Conn, step func(fd int) bool) error { return plainLoop(step) }

// rawRead is never called: readLoop passes no socket.
func rawRead(int, []byte) (int, error) { panic("rawRead without raw sockets") }
