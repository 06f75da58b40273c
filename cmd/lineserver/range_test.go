package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver/internal/testenv"
)

// TestRanges starts the real binary and reads ranges back: the whole file,
// its tail, and a slice of it as NDJSON.
func TestRanges(t *testing.T) {
	data := append(testenv.Varied(5000), "a last line without newline"...)
	lines := testenv.Lines(data)
	path := testenv.WriteIndexed(t, t.TempDir(), "data.txt", data)
	port := testenv.FreePort(t)
	p := testenv.Start(t, bin, nil, "FILE_REPOSITORY_FILE_PATH="+path, "PORT="+strconv.Itoa(port))
	testenv.WaitHTTP(t, testenv.URL(port)+"/readyz", 10*time.Second, p)

	fetch := func(path, accept string) (*http.Response, []byte) {
		req, err := http.NewRequest("GET", testenv.URL(port)+path, nil)
		require.NoError(t, err)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, body
	}
	resp, body := fetch("/lines/1..-1", "")
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, string(data), string(body), "1..-1 is the whole file")
	assert.Equal(t, int64(len(data)), resp.ContentLength)

	resp, body = fetch("/lines/-100..-1", "")
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, strings.Join(toStrings(lines[len(lines)-100:]), ""), string(body))

	resp, body = fetch("/lines/2000..2999", "application/x-ndjson")
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "application/x-ndjson", resp.Header.Get("Content-Type"))
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	n := int64(2000)
	for sc.Scan() {
		var l struct {
			Number int64  `json:"number"`
			Line   string `json:"line"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l))
		require.Equal(t, n, l.Number)
		require.Equal(t, strings.TrimSuffix(string(lines[n-1]), "\n"), l.Line)
		n++
	}
	assert.Equal(t, int64(3000), n)

	for path, want := range map[string]int{"/lines/10..5": 400, "/lines/1..5002": 413, "/lines/0..5": 400, "/lines/1...5": 400} {
		resp, _ := fetch(path, "")
		assert.Equal(t, want, resp.StatusCode, path)
	}
}

func toStrings(b [][]byte) []string {
	s := make([]string, len(b))
	for i := range b {
		s[i] = string(b[i])
	}
	return s
}
