package loadtest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFixedRate(t *testing.T) {
	var n, bad atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if !strings.HasPrefix(r.URL.Path, "/lines/") {
			bad.Add(1)
		}
		if r.URL.Path == "/lines/1" {
			w.WriteHeader(http.StatusTeapot)
		}
		w.Write([]byte("line\n"))
	}))
	defer srv.Close()
	res, err := fixedRate{Rate: 400, Duration: 500 * time.Millisecond, Lines: 4, Seed: 1, Connections: 4}.run(context.Background(), srv.URL)
	require.NoError(t, err)
	assert.Equal(t, int64(200), res.Sent, "rate × duration requests")
	assert.Equal(t, int64(200), n.Load(), "each sent once")
	assert.Zero(t, bad.Load())
	assert.Positive(t, res.Errors, "line 1 answers 418, an error")
	assert.Less(t, res.Errors, int64(200))
	assert.Positive(t, res.P50)
	assert.LessOrEqual(t, res.P50, res.P99)
	assert.LessOrEqual(t, res.P99, res.Max)
}

func TestFixedRateCountsRefusedConnections(t *testing.T) {
	port, err := freePort()
	require.NoError(t, err)
	res, err := fixedRate{Rate: 100, Duration: 100 * time.Millisecond, Lines: 10, Connections: 2}.run(context.Background(), localURL(port))
	require.NoError(t, err)
	assert.Equal(t, res.Sent, res.Errors)
}

func TestFixedRateStopsWithContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := fixedRate{Rate: 10, Duration: time.Hour, Lines: 10}.run(ctx, srv.URL)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 1000; i++ {
		ds = append(ds, time.Duration(i))
	}
	assert.Equal(t, time.Duration(500), percentile(ds, 50))
	assert.Equal(t, time.Duration(990), percentile(ds, 99))
	assert.Equal(t, time.Duration(999), percentile(ds, 99.9))
	assert.Equal(t, time.Duration(1000), percentile(ds, 100))
	assert.Equal(t, time.Duration(1), percentile(ds, 0))
	assert.Zero(t, percentile(nil, 50))
	assert.Equal(t, time.Duration(7), percentile([]time.Duration{7}, 99.9))
}
