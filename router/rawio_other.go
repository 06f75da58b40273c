//go:build !linux

package router

import "net"

// newRawConn returns c: raw system calls are for Linux (see rawio_linux.go).
func newRawConn(c net.Conn) net.Conn { return c }
