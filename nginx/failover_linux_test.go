package nginx

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver/internal/manifest"
	"github.com/lineserver/lineserver/internal/testenv"
)

// TestNginxFailsOverAConnectTimeout: of a shard's two replicas, one drops
// every connection attempt (its accept queue is full) and one answers.
// NGINX waits out its connect timeout on the first and then asks the
// second, so every request gets its line; with a retry budget shorter than
// the connect timeout it answered 504 every few requests.
func TestNginxFailsOverAConnectTimeout(t *testing.T) {
	blackhole := testenv.ListenFull(t)
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("a line\n"))
	}))
	t.Cleanup(good.Close)
	m := &manifest.Manifest{TotalLines: 10, Shards: []manifest.Shard{{
		Name: "shard-1", First: 1, Last: 10, Data: "d.txt",
		URLs: []string{"http://" + blackhole.Addr().String(), good.URL},
	}}}
	require.NoError(t, m.Validate())
	base, _ := startNginx(t, m)

	client := &http.Client{Timeout: 30 * time.Second}
	statuses := map[int]int{}
	for range 8 {
		resp, err := client.Get(base + "/lines/5")
		require.NoError(t, err)
		resp.Body.Close()
		statuses[resp.StatusCode]++
		time.Sleep(300 * time.Millisecond)
	}
	assert.Equal(t, map[int]int{200: 8}, statuses)
}
