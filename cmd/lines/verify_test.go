package main

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver/internal/index"
	"github.com/lineserver/lineserver/internal/testenv"
)

func TestVerifyCommand(t *testing.T) {
	for name, data := range testenv.Awkward() {
		t.Run(name, func(t *testing.T) {
			path := testenv.WriteIndexed(t, t.TempDir(), "data.txt", data)
			n := strconv.Itoa(len(testenv.Lines(data)))
			for _, args := range [][]string{{"verify", path}, {"verify", path, path + "_index.txt"}} {
				stdout, stderr, err := callLines(args...)
				require.NoError(t, err)
				assert.Contains(t, stdout, "ok: "+n+" lines (")
				assert.Empty(t, stderr)
			}
		})
	}
}

// TestVerifyJSONLinesFile: a data file named *.json with its index beside
// it is a data file; without an index, a *.json file is a manifest.
func TestVerifyJSONLinesFile(t *testing.T) {
	dir := t.TempDir()
	path := testenv.WriteIndexed(t, dir, "events.json", []byte("{\"a\":1}\n{\"shards\":2}\n"))
	stdout, stderr, err := callLines("verify", path)
	require.NoError(t, err, stderr)
	assert.Contains(t, stdout, "ok: 2 lines (")

	require.NoError(t, os.Remove(path+"_index.txt"))
	_, _, err = callLines("verify", path)
	assert.ErrorContains(t, err, "manifest")
}

func TestVerifyCommandRejects(t *testing.T) {
	data := []byte("first\nsecond\r\nnaïve\n\nlast")
	good, err := index.Of(data)
	require.NoError(t, err)
	other, err := index.Of(testenv.Varied(5))
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		idx  []byte
		want string
	}{
		{"changed digit", edit(good, 3*13+10, '3'), "line 4: expected offset 000000000021, found 000000000031"},
		{"missing entry", good[:4*13], "line 5: missing entry"},
		{"extra entry", append(append([]byte{}, good...), "000000000026\n"...), "line 6: extra entry"},
		{"truncated entry", good[:len(good)-1], "line 5: truncated entry"},
		{"non-digits", edit(good, 2*13+5, 'x'), `line 3: entry "00000x000014\n" is not 12 digits and a newline`},
		{"another file's index", other, "line 2: expected offset 000000000006, found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "data.txt")
			require.NoError(t, os.WriteFile(path, data, 0o644))
			require.NoError(t, os.WriteFile(path+"_index.txt", tc.idx, 0o644))
			stdout, stderr, err := callLines("verify", path)
			require.ErrorIs(t, err, errFailed)
			assert.Empty(t, stdout)
			assert.Contains(t, stderr, path+"_index.txt does not match "+path+": "+tc.want)
		})
	}
}

func edit(b []byte, at int, c byte) []byte {
	b = append([]byte{}, b...)
	b[at] = c
	return b
}

func TestVerifyCommandErrors(t *testing.T) {
	dir := t.TempDir()
	path := testenv.WriteIndexed(t, dir, "data.txt", []byte("a\n"))
	for _, tc := range []struct {
		name  string
		args  []string
		usage bool
		want  string
	}{
		{"no arguments", []string{"verify"}, true, "want 1 or 2 arguments, got 0"},
		{"three arguments", []string{"verify", path, path, path}, true, "want 1 or 2 arguments, got 3"},
		{"missing data", []string{"verify", filepath.Join(dir, "nope")}, false, "data file: open " + filepath.Join(dir, "nope") + ": no such file or directory"},
		{"missing index", []string{"verify", path, filepath.Join(dir, "nope")}, false, "no such file or directory (build it with: lines index " + path + " -o " + filepath.Join(dir, "nope") + ")"},
		{"data is a directory", []string{"verify", dir, path}, false, "is a directory, not a regular file"},
		{"index is a directory", []string{"verify", path, dir}, false, "index: " + dir + " is a directory, not a regular file"},
		{"missing manifest", []string{"verify", filepath.Join(dir, "m.json")}, false, "manifest: open"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := callLines(tc.args...)
			require.Error(t, err)
			assert.Equal(t, tc.usage, errors.Is(err, errUsage), err)
			assert.False(t, errors.Is(err, errFailed), "an error, not a failed check")
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// TestVerifyManifest checks the reference's layout, where every shard
// serves its range from the whole file and its index, and a manifest named
// without .json.
func TestVerifyManifest(t *testing.T) {
	dir := t.TempDir()
	testenv.WriteIndexed(t, dir, "data.txt", testenv.Varied(300))
	m := `{"total_lines": 300, "shards": [
		{"name": "shard-1", "first": 1, "last": 100, "data": "data.txt", "urls": ["http://a:1"]},
		{"name": "shard-2", "first": 101, "last": 300, "data": "data.txt", "index": "data.txt_index.txt", "urls": ["http://b:1"]}]}`
	for _, name := range []string{"manifest.json", "shards.conf"} {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(m), 0o644))
		stdout, stderr, err := callLines("verify", path)
		require.NoError(t, err, stderr)
		assert.Contains(t, stdout, "shard-1: ok: lines 1-100 of the whole file "+filepath.Join(dir, "data.txt")+" (300 lines)\n")
		assert.Contains(t, stdout, "shard-2: ok: lines 101-300 of the whole file")
		assert.Contains(t, stdout, "ok: 300 lines\n")
	}
}

func TestVerifyManifestRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		total int
		want  string
	}{
		{"whole file shorter than the manifest", 301, "has 300 lines, but the manifest's total_lines is 301"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			testenv.WriteIndexed(t, dir, "data.txt", testenv.Varied(300))
			m := `{"total_lines": ` + strconv.Itoa(tc.total) + `, "shards": [
				{"name": "shard-1", "first": 1, "last": 200, "data": "data.txt", "urls": ["http://a:1"]},
				{"name": "shard-2", "first": 201, "last": ` + strconv.Itoa(tc.total) + `, "data": "data.txt", "urls": ["http://b:1"]}]}`
			path := filepath.Join(dir, "manifest.json")
			require.NoError(t, os.WriteFile(path, []byte(m), 0o644))
			_, stderr, err := callLines("verify", path)
			require.ErrorIs(t, err, errFailed)
			assert.Contains(t, stderr, "shard-1: ")
			assert.Contains(t, stderr, tc.want)
			assert.Contains(t, stderr, "2 of 2 shards failed")
		})
	}
}

// TestVerifyManifestSlices checks shards cut by lines shard, and slices cut
// the reference's way, whose indexes keep the whole file's offsets.
func TestVerifyManifestSlices(t *testing.T) {
	data := testenv.Varied(300)
	lines := testenv.Lines(data)
	whole, err := index.Of(data)
	require.NoError(t, err)
	dir := t.TempDir()
	src := filepath.Join(dir, "data.txt")
	require.NoError(t, os.WriteFile(src, data, 0o644))
	out := filepath.Join(dir, "shards")
	_, _, err = callLines("shard", src, "--lines-per-shard", "100", "--out", out)
	require.NoError(t, err)

	// The reference's slice of lines 101-200 keeps global offsets.
	var slice []byte
	for _, l := range lines[100:200] {
		slice = append(slice, l...)
	}
	require.NoError(t, os.WriteFile(filepath.Join(out, "shard-2.txt"), slice, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(out, "shard-2.txt_index.txt"), whole[100*index.EntrySize:200*index.EntrySize], 0o644))
	stdout, stderr, err := callLines("verify", filepath.Join(out, "manifest.json"))
	require.NoError(t, err, stderr)
	assert.Contains(t, stdout, "shard-2: ok: lines 101-200, a slice of 100 lines\n")

	// A changed entry is reported with the shard and its global line.
	idx := filepath.Join(out, "shard-3.txt_index.txt")
	b, err := os.ReadFile(idx)
	require.NoError(t, err)
	b[9*index.EntrySize+11]++
	require.NoError(t, os.WriteFile(idx, b, 0o644))
	stdout, stderr, err = callLines("verify", filepath.Join(out, "manifest.json"))
	require.ErrorIs(t, err, errFailed)
	assert.Contains(t, stdout, "shard-1: ok")
	assert.Contains(t, stderr, "shard-3: "+idx+" does not match "+filepath.Join(out, "shard-3.txt")+": line 210: expected offset")
	assert.Contains(t, stderr, "1 of 3 shards failed")
	assert.NotContains(t, stdout, "ok: 300 lines")

	// A slice with fewer lines than its range.
	require.NoError(t, os.WriteFile(filepath.Join(out, "shard-3.txt"), []byte("one line\n"), 0o644))
	require.NoError(t, os.WriteFile(idx, []byte("000000000000\n"), 0o644))
	_, stderr, err = callLines("verify", filepath.Join(out, "manifest.json"))
	require.ErrorIs(t, err, errFailed)
	assert.Contains(t, stderr, "shard-3: "+filepath.Join(out, "shard-3.txt")+" has 1 lines, but the shard serves lines 201-300 (100 lines)")
}
