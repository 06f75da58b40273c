package loadtest

import (
	"errors"
	"fmt"
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
