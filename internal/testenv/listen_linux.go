package testenv

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// ListenFull returns a listener on 127.0.0.1 whose accept queue is full:
// listen(2) with a backlog of 0 holds one connection, which a dial from
// the test takes. Linux drops every further SYN until the queue is
// drained, as it does for a shard swamped by a burst of new connections,
// and the dialing side resends its SYN after 1 s.
func ListenFull(t testing.TB) net.Listener {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	sa := &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
	require.NoError(t, syscall.Bind(fd, sa))
	require.NoError(t, syscall.Listen(fd, 0))
	f := os.NewFile(uintptr(fd), "backlog-0")
	l, err := net.FileListener(f) // dups fd
	f.Close()
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })

	filler, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { filler.Close() })
	_, err = net.DialTimeout("tcp", l.Addr().String(), 200*time.Millisecond)
	require.Error(t, err, "the accept queue should be full")
	var ne net.Error
	require.True(t, errors.As(err, &ne) && ne.Timeout(), "a full accept queue should drop the SYN, got %v", err)
	return l
}
