package router

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// listenFull returns a listener on 127.0.0.1 whose accept queue is full:
// listen(2) with a backlog of 0 holds one connection, which a dial from
// the test takes. Linux drops every further SYN until the queue is
// drained, as it does for a shard swamped by a burst of new connections,
// and the dialing side resends its SYN after 1 s.
func listenFull(t *testing.T) net.Listener {
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
	require.True(t, isTimeout(err), "a full accept queue should drop the SYN, got %v", err)
	return l
}

// A lone replica whose accept queue was full at the first dial still gets
// the request: the second dial waits patientDialTimeout, long enough for
// the kernel's resent SYN to reach it once it accepts again. With a second
// dial as short as the first (100 ms here), the request would get a 502.
func TestPatientDialReachesABusyLoneReplica(t *testing.T) {
	bothModes(t, func(t *testing.T, mode mode) {
		l := listenFull(t)
		srv := &http.Server{Handler: &fakeShard{name: "shard-1", first: 1, last: 100}}
		t.Cleanup(func() { srv.Close() })
		// Accept again only after the first dial (100 ms) and the start of
		// the second have passed: only the resent SYN can get through.
		go func() {
			time.Sleep(400 * time.Millisecond)
			srv.Serve(l)
		}()

		rt := newRouter(t, testManifest(t, []string{"http://" + l.Addr().String()}), mode(Options{ConnectTimeout: 100 * time.Millisecond}))
		var rec *httptest.ResponseRecorder
		took := timed(func() { rec = get(rt, "/lines/7") })
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		assert.Equal(t, "line 7 of shard-1\n", rec.Body.String())
		t.Logf("answered after %v", took.Round(time.Millisecond))
	})
}
