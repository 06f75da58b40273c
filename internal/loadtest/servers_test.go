package loadtest

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRetry(t *testing.T) {
	calls := 0
	s, err := retry(func() (*server, error) {
		if calls++; calls < 3 {
			return nil, fmt.Errorf("shard %w before it answered", errExited)
		}
		return &server{url: "http://127.0.0.1:1"}, nil
	})
	require.NoError(t, err)
	assert.Equal(t, 3, calls, "a server that lost its port is started again")
	assert.Equal(t, "http://127.0.0.1:1", s.url)

	calls = 0
	_, err = retry(func() (*server, error) { calls++; return nil, fmt.Errorf("x %w", errExited) })
	assert.ErrorIs(t, err, errExited)
	assert.Equal(t, retries, calls, "then it gives up")

	calls = 0
	_, err = retry(func() (*server, error) { calls++; return nil, errors.New("did not answer in time") })
	assert.Error(t, err)
	assert.Equal(t, 1, calls, "only an early exit is retried")
}

func TestShardRange(t *testing.T) {
	for _, total := range []int64{3, 10, 3_226_539} {
		next := int64(1)
		for i := range 3 {
			first, last := shardRange(total, 3, i)
			assert.Equal(t, next, first)
			assert.GreaterOrEqual(t, last, first)
			next = last + 1
		}
		assert.Equal(t, total+1, next, "contiguous from 1 to total")
	}
}

func TestManifestOver(t *testing.T) {
	d := &dataset{Lines: 3_226_539, Data: "/data/lines.txt", Index: "/data/lines.txt_index.txt"}
	urls := []string{"http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"}
	for _, tc := range []struct {
		name  string
		urls  []string
		n     int
		lines int64
	}{
		{"one shard, one server", urls[:1], 1, d.Lines},
		{"3 shards, 3 servers", urls, 3, d.Lines},
		{"1,000 shards, 3 servers", urls, 1000, d.Lines},
		{"1,000 shards, one server", urls[:1], 1000, d.Lines},
		{"as many shards as lines", urls, 1000, 1000},
		{"an uneven split", urls[:2], 7, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &dataset{Lines: tc.lines, Data: d.Data, Index: d.Index}
			m, err := manifestOver(d, tc.urls, tc.n)
			require.NoError(t, err)
			require.Len(t, m.Shards, tc.n)
			assert.Equal(t, tc.lines, m.TotalLines)
			next := int64(1)
			names := map[string]bool{}
			for i, s := range m.Shards {
				assert.Equal(t, next, s.First, "shard %d starts after the one before", i+1)
				assert.GreaterOrEqual(t, s.Last, s.First)
				next = s.Last + 1
				names[s.Name] = true
				assert.Equal(t, d.Data, s.Data)
				assert.Equal(t, d.Index, s.Index)
				require.Len(t, s.URLs, 1)
				// Every shard lies within the slice its server serves.
				j := slices.Index(tc.urls, s.URLs[0])
				require.GreaterOrEqual(t, j, 0)
				first, last := shardRange(tc.lines, len(tc.urls), j)
				assert.True(t, s.First >= first && s.Last <= last, "shard %s %d..%d outside its server's %d..%d", s.Name, s.First, s.Last, first, last)
			}
			assert.Equal(t, tc.lines+1, next, "contiguous from 1 to the last line")
			assert.Len(t, names, tc.n, "names are unique")
			assert.Equal(t, "shard-1", m.Shards[0].Name)
		})
	}
}

// TestManifestOverPairs checks what makes nginx3 and nginx1000 comparable:
// the same servers, each serving the same lines in both manifests.
func TestManifestOverPairs(t *testing.T) {
	d := &dataset{Lines: 100_003, Data: "/d"}
	urls := []string{"http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"}
	served := func(n int) map[string][2]int64 {
		m, err := manifestOver(d, urls, n)
		require.NoError(t, err)
		out := map[string][2]int64{}
		for _, s := range m.Shards {
			r, ok := out[s.URLs[0]]
			if !ok {
				r = [2]int64{s.First, s.Last}
			}
			out[s.URLs[0]] = [2]int64{min(r[0], s.First), max(r[1], s.Last)}
		}
		return out
	}
	assert.Equal(t, served(3), served(1000))
}

func TestManifestOverRefuses(t *testing.T) {
	d := &dataset{Lines: 10, Data: "/d"}
	_, err := manifestOver(d, []string{"http://127.0.0.1:1", "http://127.0.0.1:2"}, 1)
	assert.Error(t, err, "fewer shards than servers")
	_, err = manifestOver(d, []string{"http://127.0.0.1:1"}, 11)
	assert.Error(t, err, "more shards than lines")
	_, err = manifestOver(d, nil, 1)
	assert.Error(t, err, "no server")
}

func TestDoorShards(t *testing.T) {
	for name, want := range map[string]int{"nginx": 1, "router": 1, "nginx3": 3, "router3": 3, "nginx1000": 1000, "router1000": 1000} {
		assert.Equal(t, want, doorShards(name), name)
	}
}
