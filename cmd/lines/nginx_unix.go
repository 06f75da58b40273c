//go:build unix

package main

import (
	"math"
	"syscall"
)

// hardOpenFiles is the hard limit of open files of this process, which
// NGINX started the same way inherits and may raise its own limit to
// without privileges; math.MaxInt when there is none.
func hardOpenFiles() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Max > math.MaxInt32 {
		return math.MaxInt
	}
	return int(lim.Max)
}
