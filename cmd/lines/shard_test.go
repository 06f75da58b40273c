package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver/internal/index"
	"github.com/lineserver/lineserver/internal/manifest"
	"github.com/lineserver/lineserver/internal/testenv"
)

// shardFiles are the awkward files and some that are hard to cut.
func shardFiles() map[string][]byte {
	files := testenv.Awkward()
	delete(files, "empty") // see TestShardEmptyFile
	files["varied"] = testenv.Varied(2000)
	files["long first line"] = []byte(strings.Repeat("x", 100_000) + "\na\nb\nc\nno newline")
	return files
}

// TestShardRoundTrip cuts files and checks that the slices put together
// are the file, that every slice's index is its own, and that the
// manifest is valid and counts every line once.
func TestShardRoundTrip(t *testing.T) {
	for name, data := range shardFiles() {
		lines := testenv.Lines(data)
		whole, err := index.Of(data)
		require.NoError(t, err)
		for _, how := range [][]string{{"--shards", "1"}, {"--shards", "3"}, {"--lines-per-shard", "2"}, {"--lines-per-shard", "1000"}} {
			n, _ := strconv.Atoi(how[1])
			if how[0] == "--shards" && n > len(lines) {
				continue
			}
			t.Run(name+"/"+strings.Join(how, " "), func(t *testing.T) {
				src := filepath.Join(t.TempDir(), "data.txt")
				require.NoError(t, os.WriteFile(src, data, 0o644))
				out := filepath.Join(t.TempDir(), "shards")
				stdout, _, err := callLines(append([]string{"shard", src, "--out", out}, how...)...)
				require.NoError(t, err)
				assert.Contains(t, stdout, filepath.Join(out, "manifest.json")+": "+strconv.Itoa(len(lines))+" lines in ")

				m, err := manifest.Load(filepath.Join(out, "manifest.json"))
				require.NoError(t, err)
				assert.Equal(t, int64(len(lines)), m.TotalLines)
				if how[0] == "--shards" {
					assert.Len(t, m.Shards, n)
				} else {
					assert.Len(t, m.Shards, (len(lines)+n-1)/n)
				}
				var joined []byte
				for i, s := range m.Shards {
					assert.Equal(t, "shard-"+strconv.Itoa(i+1), s.Name)
					assert.Equal(t, s.Name+".txt", s.Data, "paths are relative to the manifest")
					assert.Equal(t, s.Name+".txt_index.txt", s.Index)
					assert.Equal(t, []string{"http://" + s.Name + ":8080"}, s.URLs)
					slice, err := os.ReadFile(m.DataPath(i))
					require.NoError(t, err)
					idx, err := os.ReadFile(m.IndexPath(i))
					require.NoError(t, err)
					want := whole[(s.First-1)*index.EntrySize : s.Last*index.EntrySize]
					assert.True(t, bytes.Equal(want, idx), "%s's index is not the whole file's entries of its lines", s.Name)
					assert.Equal(t, lines[s.First-1:s.Last], testenv.Lines(slice), "%s holds its lines", s.Name)
					joined = append(joined, slice...)
				}
				assert.True(t, bytes.Equal(data, joined), "the slices put together are not the file")

				stdout, stderr, err := callLines("verify", filepath.Join(out, "manifest.json"))
				require.NoError(t, err, stderr)
				assert.Contains(t, stdout, "ok: "+strconv.Itoa(len(lines))+" lines\n")
			})
		}
	}
}

func TestShardBalance(t *testing.T) {
	data := testenv.Varied(20_000)
	src := filepath.Join(t.TempDir(), "data.txt")
	require.NoError(t, os.WriteFile(src, data, 0o644))
	out := t.TempDir()
	_, _, err := callLines("shard", src, "--shards", "4", "--out", out)
	require.NoError(t, err)
	for i := 1; i <= 4; i++ {
		info, err := os.Stat(filepath.Join(out, fmt.Sprintf("shard-%d.txt", i)))
		require.NoError(t, err)
		assert.InDelta(t, len(data)/4, info.Size(), 200, "shard-%d", i)
	}
}

// TestShardEmptyFile: an empty file makes one empty shard; it cannot make
// more.
func TestShardEmptyFile(t *testing.T) {
	src := filepath.Join(t.TempDir(), "empty.txt")
	require.NoError(t, os.WriteFile(src, nil, 0o644))
	for _, how := range [][]string{{"--shards", "1"}, {"--lines-per-shard", "10"}, {"--shards", "1", "--no-split"}} {
		t.Run(strings.Join(how, " "), func(t *testing.T) {
			out := t.TempDir()
			_, _, err := callLines(append([]string{"shard", src, "--out", out}, how...)...)
			require.NoError(t, err)
			m, err := manifest.Load(filepath.Join(out, "manifest.json"))
			require.NoError(t, err)
			assert.Equal(t, int64(0), m.TotalLines)
			require.Len(t, m.Shards, 1)
			assert.Equal(t, int64(1), m.Shards[0].First)
			assert.Equal(t, int64(0), m.Shards[0].Last)
			_, _, err = callLines("verify", filepath.Join(out, "manifest.json"))
			assert.NoError(t, err)
		})
	}
	_, _, err := callLines("shard", src, "--shards", "2", "--out", t.TempDir())
	assert.ErrorContains(t, err, "cannot cut "+src+" into 2 shards: fewer lines than slices: 0 lines for 2 slices")
}

func TestShardNoSplit(t *testing.T) {
	data := testenv.Varied(1000)
	dir := t.TempDir()
	src := filepath.Join(dir, "data.txt")
	require.NoError(t, os.WriteFile(src, data, 0o644))
	out := filepath.Join(dir, "deploy")

	// The first run builds the missing index, the second uses it.
	for range 2 {
		stdout, _, err := callLines("shard", src, "--shards", "3", "--out", out, "--no-split", "--url-template", "http://lines-{i}:80, https://{name}.example")
		require.NoError(t, err)
		assert.Contains(t, stdout, "shard-3: lines ")
	}
	idx, err := os.ReadFile(src + "_index.txt")
	require.NoError(t, err)
	want, err := index.Of(data)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, idx))
	testenv.DirHolds(t, out, "manifest.json")

	m, err := manifest.Load(filepath.Join(out, "manifest.json"))
	require.NoError(t, err)
	assert.Equal(t, int64(1000), m.TotalLines)
	require.Len(t, m.Shards, 3)
	for i, s := range m.Shards {
		assert.Equal(t, "../data.txt", s.Data)
		assert.Equal(t, "../data.txt_index.txt", s.Index)
		assert.Equal(t, []string{"http://lines-" + strconv.Itoa(i+1) + ":80", "https://" + s.Name + ".example"}, s.URLs)
		assert.InDelta(t, 333, s.Last-s.First+1, 30, "about equal bytes of similar lines")
	}

	_, _, err = callLines("shard", src, "--lines-per-shard", "400", "--out", out, "--no-split")
	require.NoError(t, err)
	m, err = manifest.Load(filepath.Join(out, "manifest.json"))
	require.NoError(t, err)
	require.Len(t, m.Shards, 3)
	assert.Equal(t, [][2]int64{{1, 400}, {401, 800}, {801, 1000}}, ranges(m))
	_, _, err = callLines("verify", filepath.Join(out, "manifest.json"))
	assert.NoError(t, err)
}

func ranges(m *manifest.Manifest) [][2]int64 {
	var r [][2]int64
	for _, s := range m.Shards {
		r = append(r, [2]int64{s.First, s.Last})
	}
	return r
}

func TestShardNoSplitBadIndex(t *testing.T) {
	data := []byte("a\nb\nc\n")
	for _, tc := range []struct{ name, idx, want string }{
		{"truncated", "000000000000\n00000000000", "its size 24 is not a multiple of 13"},
		{"not a whole file", "000000000005\n000000000007\n000000000009\n", "entry 0 is 5, not 0"},
		{"another file", "000000000000\n000000000002\n000000000040\n", "line 3 starts at byte 40, beyond the data's 6 bytes"},
		{"empty", "", "it is empty but the data file is not"},
		{"stale: the file grew", "000000000000\n000000000002\n", "has more lines than index"},
		{"entries of another file", "000000000000\n000000000003\n000000000004\n", "was the index built for this file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "data.txt")
			require.NoError(t, os.WriteFile(src, data, 0o644))
			require.NoError(t, os.WriteFile(src+"_index.txt", []byte(tc.idx), 0o644))
			_, _, err := callLines("shard", src, "--shards", "2", "--out", dir, "--no-split")
			assert.ErrorContains(t, err, tc.want)
			assert.ErrorContains(t, err, "check it with: lines verify "+src)
		})
	}
}

func TestShardErrors(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "data.txt")
	require.NoError(t, os.WriteFile(src, []byte("a\nb\nc\n"), 0o644))
	out := filepath.Join(dir, "out")
	for _, tc := range []struct {
		name  string
		args  []string
		usage bool
		want  string
	}{
		{"no file", []string{"--shards", "2", "--out", out}, true, "want one FILE, got 0 arguments"},
		{"no --out", []string{src, "--shards", "2"}, true, "--out DIR is required"},
		{"no count", []string{src, "--out", out}, true, "give either --shards or --lines-per-shard"},
		{"both counts", []string{src, "--out", out, "--shards", "2", "--lines-per-shard", "1"}, true, "give either --shards or --lines-per-shard"},
		{"negative", []string{src, "--out", out, "--shards", "-2"}, true, "must be positive"},
		{"not a number", []string{src, "--out", out, "--shards", "two"}, true, `invalid value "two" for flag -shards`},
		{"bad url template", []string{src, "--out", out, "--shards", "2", "--url-template", "ftp://{name}"}, true, "scheme must be http or https"},
		{"more shards than lines", []string{src, "--out", out, "--shards", "4"}, false, "cannot cut " + src + " into 4 shards: fewer lines than slices: 3 lines for 4 slices"},
		{"missing file", []string{filepath.Join(dir, "nope"), "--out", out, "--shards", "2"}, false, "no such file or directory"},
		{"a directory", []string{dir, "--out", out, "--shards", "2"}, false, "is a directory, not a regular file"},
		{"out is a file", []string{src, "--out", src, "--shards", "2"}, false, "--out: mkdir " + src + ": not a directory"},
		{"out holds the file", []string{filepath.Join(dir, "shard-1.txt"), "--out", dir, "--shards", "2"}, false, "is the data file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "out holds the file" {
				require.NoError(t, os.WriteFile(filepath.Join(dir, "shard-1.txt"), []byte("x\ny\n"), 0o644))
			}
			_, _, err := callLines(append([]string{"shard"}, tc.args...)...)
			require.Error(t, err)
			assert.Equal(t, tc.usage, errors.Is(err, errUsage), err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	got, err := os.ReadFile(filepath.Join(dir, "shard-1.txt"))
	require.NoError(t, err)
	assert.Equal(t, "x\ny\n", string(got), "the data file is untouched")
}

// TestShardServed starts the real shard server on every shard, of a cut
// file and of a file served whole, and reads every line back.
func TestShardServed(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the shard server")
	}
	bin := testenv.Build(t, "github.com/lineserver/lineserver/cmd/lineserver")
	data := append(testenv.Varied(1500), "naïve\r\n\n"+strings.Repeat("long ", 50_000)+"\nno final newline"...)
	lines := testenv.Lines(data)
	for _, how := range [][]string{{"--shards", "3"}, {"--shards", "3", "--no-split"}} {
		t.Run(strings.Join(how, " "), func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "data.txt")
			require.NoError(t, os.WriteFile(src, data, 0o644))
			out := filepath.Join(dir, "shards")
			_, _, err := callLines(append([]string{"shard", src, "--out", out}, how...)...)
			require.NoError(t, err)
			m, err := manifest.Load(filepath.Join(out, "manifest.json"))
			require.NoError(t, err)

			for i, s := range m.Shards {
				port := testenv.FreePort(t)
				p := testenv.Start(t, bin, nil,
					"FILE_REPOSITORY_FILE_PATH="+m.DataPath(i),
					"INDEX_FILE_PATH="+m.IndexPath(i),
					"INDEX_FIRST_LINE_NUMBER="+strconv.FormatInt(s.First, 10),
					"INDEX_LAST_LINE_NUMBER="+strconv.FormatInt(s.Last, 10),
					"FILE_TOTAL_LINES="+strconv.FormatInt(m.TotalLines, 10),
					"PORT="+strconv.Itoa(port))
				testenv.WaitHTTP(t, testenv.URL(port)+"/readyz", 10*time.Second, p)
				for n := s.First; n <= s.Last; n++ {
					got, status := get(t, fmt.Sprintf("%s/lines/%d", testenv.URL(port), n))
					require.Equal(t, http.StatusOK, status, "%s, line %d", s.Name, n)
					require.Equal(t, string(lines[n-1]), string(got), "%s, line %d", s.Name, n)
				}
				p.Kill()
			}
		})
	}
}

func get(t *testing.T, url string) ([]byte, int) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return body, resp.StatusCode
}

// TestShardRerunRemovesStaleShards re-cuts a folder into fewer shards, then
// plans shards in place: each run leaves exactly its own files, and the
// files the folder held that no manifest named stay.
func TestShardRerunRemovesStaleShards(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "data.txt")
	require.NoError(t, os.WriteFile(src, testenv.Varied(400), 0o644))
	out := filepath.Join(dir, "deploy")
	require.NoError(t, os.MkdirAll(out, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(out, "notes.txt"), []byte("mine\n"), 0o644))
	files := func(n int) []string {
		names := []string{"manifest.json", "notes.txt"}
		for i := 1; i <= n; i++ {
			names = append(names, fmt.Sprintf("shard-%d.txt", i), fmt.Sprintf("shard-%d.txt_index.txt", i))
		}
		return names
	}

	_, _, err := callLines("shard", src, "--shards", "4", "--out", out)
	require.NoError(t, err)
	testenv.DirHolds(t, out, files(4)...)

	stdout, _, err := callLines("shard", src, "--shards", "2", "--out", out)
	require.NoError(t, err)
	testenv.DirHolds(t, out, files(2)...)
	assert.Contains(t, stdout, "removed "+filepath.Join(out, "shard-4.txt_index.txt"))
	_, stderr, err := callLines("verify", filepath.Join(out, "manifest.json"))
	require.NoError(t, err, stderr)

	_, _, err = callLines("shard", src, "--shards", "2", "--out", out, "--no-split")
	require.NoError(t, err)
	testenv.DirHolds(t, out, files(0)...)
	assert.FileExists(t, src, "the data file itself is never removed")

	// A manifest it cannot read is reported, and nothing is removed.
	require.NoError(t, os.WriteFile(filepath.Join(out, "shard-9.txt"), nil, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(out, "manifest.json"), []byte("{broken"), 0o644))
	_, stderr, err = callLines("shard", src, "--shards", "1", "--out", out)
	require.NoError(t, err)
	assert.Contains(t, stderr, "cannot be read")
	testenv.DirHolds(t, out, append(files(1), "shard-9.txt")...)
}

// TestShardRerunKeepsTheDataFile: the data file and its index sit in the
// folder and the two runs spell them differently (relative, then
// absolute); the second run still knows them as its own input.
func TestShardRerunKeepsTheDataFile(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "big.txt")
	data := testenv.Varied(400)
	require.NoError(t, os.WriteFile(src, data, 0o644))
	t.Chdir(dir)

	_, stderr, err := callLines("shard", "big.txt", "--shards", "2", "--no-split", "--out", ".")
	require.NoError(t, err, stderr)
	stdout, stderr, err := callLines("shard", src, "--shards", "2", "--out", ".")
	require.NoError(t, err, stderr)
	assert.NotContains(t, stdout, "removed")
	got, err := os.ReadFile(src)
	require.NoError(t, err, "the data file must survive a re-run")
	assert.Equal(t, data, got)
	assert.FileExists(t, src+"_index.txt")
	testenv.DirHolds(t, dir, "big.txt", "big.txt_index.txt", "manifest.json",
		"shard-1.txt", "shard-1.txt_index.txt", "shard-2.txt", "shard-2.txt_index.txt")
}
