package manifest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const good = `{"total_lines": 300, "shards": [
  {"name": "shard-1", "first": 1, "last": 100, "data": "shard-1.txt", "index": "shard-1.txt_index.txt", "urls": ["http://shard-1:8080"]},
  {"name": "shard-2", "first": 101, "last": 250, "data": "/abs/shard-2.txt", "urls": ["http://127.0.0.1:8081", "https://b.example"]},
  {"name": "shard-3", "first": 251, "last": 300, "data": "shard-3.txt", "urls": ["http://shard-3:8080/"]}
]}`

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "manifest.json")
	require.NoError(t, os.WriteFile(path, []byte(good), 0o644))
	m, err := Load(path)
	require.NoError(t, err)
	assert.Equal(t, int64(300), m.TotalLines)
	assert.Equal(t, filepath.Join(dir, "shard-1.txt"), m.DataPath(0))
	assert.Equal(t, filepath.Join(dir, "shard-1.txt_index.txt"), m.IndexPath(0))
	assert.Equal(t, "/abs/shard-2.txt", m.DataPath(1))
	assert.Equal(t, "/abs/shard-2.txt_index.txt", m.IndexPath(1), "the index defaults to <data>_index.txt")

	var buf bytes.Buffer
	require.NoError(t, m.Write(&buf))
	again, err := Parse(buf.Bytes())
	require.NoError(t, err)
	assert.Equal(t, m.Shards, again.Shards)
}

func TestFind(t *testing.T) {
	m, err := Parse([]byte(good))
	require.NoError(t, err)
	for n, want := range map[int64]int{1: 0, 100: 0, 101: 1, 250: 1, 251: 2, 300: 2} {
		got, ok := m.Find(n)
		assert.True(t, ok, n)
		assert.Equal(t, want, got, n)
	}
	for _, n := range []int64{0, -1, 301} {
		_, ok := m.Find(n)
		assert.False(t, ok, n)
	}
}

func TestParseRejects(t *testing.T) {
	shard := func(name string, first, last int64, urls string) string {
		return `{"name":"` + name + `","first":` + itoa(first) + `,"last":` + itoa(last) + `,"data":"d","urls":` + urls + `}`
	}
	ok := `["http://a:1"]`
	for _, tc := range []struct{ name, json, want string }{
		{"not json", `{`, "unexpected EOF"},
		{"unknown field", `{"total_lines":1,"shard":[]}`, `unknown field "shard"`},
		{"trailing data", `{"total_lines":1,"shards":[` + shard("a", 1, 1, ok) + `]} {}`, "data after"},
		{"no shards", `{"total_lines":0,"shards":[]}`, "no shards"},
		{"gap", `{"total_lines":3,"shards":[` + shard("a", 1, 1, ok) + `,` + shard("b", 3, 3, ok) + `]}`, "first is 3, want 2"},
		{"overlap", `{"total_lines":3,"shards":[` + shard("a", 1, 2, ok) + `,` + shard("b", 2, 3, ok) + `]}`, "first is 2, want 3"},
		{"not from 1", `{"total_lines":3,"shards":[` + shard("a", 2, 3, ok) + `]}`, "want 1"},
		{"short of total", `{"total_lines":4,"shards":[` + shard("a", 1, 3, ok) + `]}`, "total_lines is 4"},
		{"reversed", `{"total_lines":3,"shards":[` + shard("a", 1, 0, ok) + `,` + shard("b", 1, 3, ok) + `]}`, "before first"},
		{"bad name", `{"total_lines":1,"shards":[` + shard("Shard_1", 1, 1, ok) + `]}`, "name must be"},
		{"same name", `{"total_lines":2,"shards":[` + shard("a", 1, 1, ok) + `,` + shard("a", 2, 2, ok) + `]}`, "used twice"},
		{"no urls", `{"total_lines":1,"shards":[` + shard("a", 1, 1, `[]`) + `]}`, "no urls"},
		{"bad scheme", `{"total_lines":1,"shards":[` + shard("a", 1, 1, `["ftp://a"]`) + `]}`, "scheme"},
		{"url path", `{"total_lines":1,"shards":[` + shard("a", 1, 1, `["http://a/x"]`) + `]}`, "path"},
		{"url user", `{"total_lines":1,"shards":[` + shard("a", 1, 1, `["http://u:p@a"]`) + `]}`, "credentials"},
		{"negative total", `{"total_lines":-1,"shards":[` + shard("a", 1, 1, ok) + `]}`, "below 0"},
		{"no data", `{"total_lines":1,"shards":[{"name":"a","first":1,"last":1,"urls":["http://a"]}]}`, "data is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.json))
			require.ErrorIs(t, err, ErrInvalid)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestEmptyFile(t *testing.T) {
	m, err := Parse([]byte(`{"total_lines":0,"shards":[{"name":"a","first":1,"last":0,"data":"d","urls":["http://a"]}]}`))
	require.NoError(t, err)
	_, ok := m.Find(1)
	assert.False(t, ok)
}

func itoa(n int64) string { return string(appendInt(nil, n)) }

func appendInt(b []byte, n int64) []byte {
	if n < 0 {
		return appendInt(append(b, '-'), -n)
	}
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte(`{"total_lines":0,"shards":[]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalid)
			return
		}
		// An accepted manifest finds exactly one shard for every line.
		for _, n := range []int64{1, m.TotalLines / 2, m.TotalLines} {
			if n < 1 {
				continue
			}
			i, ok := m.Find(n)
			require.True(t, ok)
			s := m.Shards[i]
			require.True(t, s.First <= n && n <= s.Last)
		}
		var buf bytes.Buffer
		require.NoError(t, m.Write(&buf))
		again, err := Parse(buf.Bytes())
		require.NoError(t, err)
		require.Equal(t, m.Shards, again.Shards)
	})
}
