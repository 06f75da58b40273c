package router

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver/internal/testenv"
)

// A lone replica whose accept queue was full at the first dial still gets
// the request: the second dial waits patientDialTimeout, long enough for
// the kernel's resent SYN to reach it once it accepts again. With a second
// dial as short as the first (100 ms here), the request would get a 502.
func TestPatientDialReachesABusyLoneReplica(t *testing.T) {
	{
		l := testenv.ListenFull(t)
		srv := &http.Server{Handler: &fakeShard{name: "shard-1", first: 1, last: 100}}
		t.Cleanup(func() { srv.Close() })
		// Accept again only after the first dial (100 ms) and the start of
		// the second have passed: only the resent SYN can get through.
		go func() {
			time.Sleep(400 * time.Millisecond)
			srv.Serve(l)
		}()

		rt := newRouter(t, testManifest(t, []string{"http://" + l.Addr().String()}), Options{ConnectTimeout: 100 * time.Millisecond})
		var rec *httptest.ResponseRecorder
		took := timed(func() { rec = get(rt, "/lines/7") })
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		assert.Equal(t, "line 7 of shard-1\n", rec.Body.String())
		t.Logf("answered after %v", took.Round(time.Millisecond))
	}
}

// TestHealthChecksWaitOutABusyReplica: checks whose connection attempts
// are dropped by a full accept queue count as slow, not as a replica
// down: it stays in service until three in a row, as a slow /readyz does.
func TestHealthChecksWaitOutABusyReplica(t *testing.T) {
	l := testenv.ListenFull(t)
	rt := newRouter(t, testManifest(t, []string{"http://" + l.Addr().String()}), Options{
		ConnectTimeout: 50 * time.Millisecond, HealthTimeout: 200 * time.Millisecond,
	})
	rep := rt.shards[0].replicas[0]
	ctx := context.Background()
	rt.CheckHealth(ctx)
	rt.CheckHealth(ctx)
	assert.True(t, rep.healthy.Load(), "two dropped connection attempts keep it")
	rt.CheckHealth(ctx)
	assert.False(t, rep.healthy.Load(), "three in a row eject it")
}
