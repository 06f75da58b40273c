package shard

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver/internal/index"
	"github.com/lineserver/lineserver/internal/lineno"
	"github.com/lineserver/lineserver/internal/manifest"
	"github.com/lineserver/lineserver/internal/testenv"
)

// layoutFiles lays out the cases of the rules table: a 30-line file and
// slices of it, bare and beside a manifest, in folders of dir.
type layoutFiles struct {
	dir   string
	lines [][]byte
}

func newLayoutFiles(t *testing.T) *layoutFiles {
	f := &layoutFiles{dir: t.TempDir()}
	data := testenv.Varied(30)
	f.lines = testenv.Lines(data)
	idx, err := index.Of(data)
	require.NoError(t, err)
	slice := func(first, last int64) ([]byte, []byte) {
		var b []byte
		for _, l := range f.lines[first-1 : last] {
			b = append(b, l...)
		}
		return b, idx[(first-1)*index.EntrySize : last*index.EntrySize]
	}
	write := func(dir, name string, data, idx []byte) {
		require.NoError(t, os.MkdirAll(filepath.Join(f.dir, dir), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(f.dir, dir, name), data, 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(f.dir, dir, name+"_index.txt"), idx, 0o644))
	}
	write("bare", "whole.txt", data, idx)
	head, headIdx := slice(1, 10)
	write("bare", "head.txt", head, headIdx)
	mid, midIdx := slice(11, 20)
	write("bare", "global.txt", mid, midIdx)
	rebased, err := index.Of(mid)
	require.NoError(t, err)
	write("bare", "rebased.txt", mid, rebased)
	grown := append(append([]byte(nil), data...), "one more line\n"...)
	write("bare", "grown.txt", grown, idx)
	write("bare", "empty.txt", nil, nil)
	write("bare", "nonempty.txt", []byte("a\n"), nil)
	require.NoError(t, os.WriteFile(filepath.Join(f.dir, "bare", "end.txt"), []byte("b\nc"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(f.dir, "bare", "end.txt_index.txt"), []byte("000000000002\n000000000004\n"), 0o644))

	// What lines shard writes: slices with global offsets and a manifest.
	m := &manifest.Manifest{TotalLines: 30}
	for i, r := range [][2]int64{{1, 10}, {11, 20}, {21, 30}} {
		name := []string{"shard-1", "shard-2", "shard-3"}[i]
		b, x := slice(r[0], r[1])
		write("cut", name+".txt", b, x)
		m.Shards = append(m.Shards, manifest.Shard{Name: name, First: r[0], Last: r[1], Data: name + ".txt",
			Index: name + ".txt_index.txt", URLs: []string{"http://" + name + ":8080"}})
	}
	f.manifest(t, "cut", m)
	// What an older lines shard wrote: rebased slices and a manifest.
	write("old", "shard-2.txt", mid, rebased)
	f.manifest(t, "old", &manifest.Manifest{TotalLines: 30, Shards: []manifest.Shard{
		{Name: "shard-1", First: 1, Last: 10, Data: "shard-1.txt", URLs: []string{"http://a:1"}},
		{Name: "shard-2", First: 11, Last: 20, Data: "shard-2.txt", URLs: []string{"http://b:1"}},
		{Name: "shard-3", First: 21, Last: 30, Data: "shard-3.txt", URLs: []string{"http://c:1"}},
	}})
	// lines shard --no-split: every shard names the whole file.
	write("nosplit", "whole.txt", data, idx)
	f.manifest(t, "nosplit", &manifest.Manifest{TotalLines: 30, Shards: []manifest.Shard{
		{Name: "shard-1", First: 1, Last: 15, Data: "whole.txt", URLs: []string{"http://a:1"}},
		{Name: "shard-2", First: 16, Last: 30, Data: "whole.txt", URLs: []string{"http://b:1"}},
	}})
	// A manifest whose range does not fit the files, one that names
	// another index, one about other files, and one that is broken.
	write("stale", "shard-2.txt", mid, midIdx)
	f.manifest(t, "stale", &manifest.Manifest{TotalLines: 30, Shards: []manifest.Shard{
		{Name: "shard-1", First: 1, Last: 12, Data: "shard-1.txt", URLs: []string{"http://a:1"}},
		{Name: "shard-2", First: 13, Last: 30, Data: "shard-2.txt", URLs: []string{"http://b:1"}},
	}})
	write("otherindex", "shard-2.txt", mid, midIdx)
	write("otherindex", "copy.txt", mid, midIdx)
	f.manifest(t, "otherindex", &manifest.Manifest{TotalLines: 30, Shards: []manifest.Shard{
		{Name: "shard-1", First: 1, Last: 10, Data: "shard-1.txt", URLs: []string{"http://a:1"}},
		{Name: "shard-2", First: 11, Last: 20, Data: "shard-2.txt", Index: "copy.txt_index.txt", URLs: []string{"http://b:1"}},
		{Name: "shard-3", First: 21, Last: 30, Data: "shard-3.txt", URLs: []string{"http://c:1"}},
	}})
	write("others", "whole.txt", data, idx)
	f.manifest(t, "others", &manifest.Manifest{TotalLines: 5, Shards: []manifest.Shard{
		{Name: "shard-1", First: 1, Last: 5, Data: "elsewhere.txt", URLs: []string{"http://a:1"}},
	}})
	write("broken", "whole.txt", data, idx)
	require.NoError(t, os.WriteFile(filepath.Join(f.dir, "broken", ManifestName), []byte(`{"shards": [`), 0o644))
	return f
}

func (f *layoutFiles) manifest(t *testing.T, dir string, m *manifest.Manifest) {
	w, err := os.Create(filepath.Join(f.dir, dir, ManifestName))
	require.NoError(t, err)
	require.NoError(t, m.Write(w))
	require.NoError(t, w.Close())
}

// TestLayoutRules has one subtest per row of the rules table in
// docs/design.md ("Index and slice rules"), named by the row's number.
func TestLayoutRules(t *testing.T) {
	f := newLayoutFiles(t)
	const unknown = -1
	for _, tc := range []struct {
		row, data string
		o         Options
		// first, last, total are what a shard that opens serves (total
		// unknown: -1); want is the refusal's message otherwise.
		first, last, total int64
		layout             string
		want               string
	}{
		{row: "M1", data: "cut/shard-2.txt", first: 11, last: 20, total: 30, layout: "slice (manifest.json)"},
		{row: "M1", data: "cut/shard-1.txt", first: 1, last: 10, total: 30, layout: "slice (manifest.json)"},
		{row: "M1", data: "old/shard-2.txt", first: 11, last: 20, total: 30, layout: "slice (manifest.json)"},
		{row: "M2", data: "cut/shard-2.txt", o: Options{First: 11, Last: 20, Total: 30}, first: 11, last: 20, total: 30, layout: "slice (manifest.json)"},
		{row: "M3", data: "cut/shard-2.txt", o: Options{First: 102, Last: 200, Total: 300},
			want: "INDEX_FIRST_LINE_NUMBER=102 and INDEX_LAST_LINE_NUMBER=200 and FILE_TOTAL_LINES=300 disagree with manifest " +
				"DIR/cut/manifest.json, which says data DIR/cut/shard-2.txt holds lines 11-20 of 30: unset INDEX_FIRST_LINE_NUMBER and " +
				"INDEX_LAST_LINE_NUMBER and FILE_TOTAL_LINES (the manifest gives the range), or start the shard on the data that holds those lines"},
		{row: "M3", data: "old/shard-2.txt", o: Options{Total: 31}, want: "FILE_TOTAL_LINES=31 disagrees with manifest"},
		{row: "M4", data: "stale/shard-2.txt", want: "index DIR/stale/shard-2.txt_index.txt has 10 entries, but manifest DIR/stale/manifest.json says data DIR/stale/shard-2.txt holds lines 13-30, 18 lines"},
		{row: "M5", data: "otherindex/shard-2.txt", want: "manifest DIR/otherindex/manifest.json says the index of data DIR/otherindex/shard-2.txt is DIR/otherindex/copy.txt_index.txt, but the shard opened index DIR/otherindex/shard-2.txt_index.txt (INDEX_FILE_PATH)"},
		{row: "M6", data: "broken/whole.txt", want: "manifest DIR/broken/manifest.json: invalid manifest"},
		{row: "M7", data: "others/whole.txt", first: 1, last: 30, total: 30, layout: "whole file"},
		{row: "M8", data: "nosplit/whole.txt", o: Options{First: 16, Last: 30}, first: 16, last: 30, total: 30, layout: "whole file (manifest.json)"},
		{row: "M8", data: "nosplit/whole.txt", o: Options{First: 1, Last: 15, Total: 29}, want: "FILE_TOTAL_LINES=29 disagrees with manifest DIR/nosplit/manifest.json, which says data DIR/nosplit/whole.txt has 30 lines"},
		{row: "G1", data: "bare/global.txt", want: "index DIR/bare/global.txt_index.txt starts at byte " /* any */},
		{row: "G2", data: "bare/global.txt", o: Options{First: 1, Last: 10}, want: "INDEX_FIRST_LINE_NUMBER=1, but index DIR/bare/global.txt_index.txt starts at byte"},
		{row: "G3", data: "bare/global.txt", o: Options{First: 11, Total: 30}, first: 11, last: 20, total: 30, layout: "slice"},
		{row: "G4", data: "bare/global.txt", o: Options{First: 102, Last: 200, Total: 300},
			want: "index DIR/bare/global.txt_index.txt is a slice of 10 lines (one entry per line), but INDEX_FIRST_LINE_NUMBER=102 and INDEX_LAST_LINE_NUMBER=200 are 99 lines: set INDEX_LAST_LINE_NUMBER=111, or unset it"},
		{row: "G5", data: "bare/global.txt", o: Options{First: 11, Last: 20}, first: 11, last: 20, total: unknown, layout: "slice"},
		{row: "G6", data: "bare/end.txt", o: Options{First: 2}, first: 2, last: 3, total: 3, layout: "slice"},
		{row: "G7", data: "bare/global.txt", o: Options{First: 11, Total: 15}, want: "FILE_TOTAL_LINES=15 is below the last line served, 20"},
		{row: "W1", data: "bare/whole.txt", first: 1, last: 30, total: 30, layout: "whole file"},
		{row: "W1", data: "bare/whole.txt", o: Options{First: 1, Last: 30, Total: 30}, first: 1, last: 30, total: 30, layout: "whole file"},
		{row: "W2", data: "bare/whole.txt", o: Options{First: 11, Last: 20}, first: 11, last: 20, total: 30, layout: "whole file"},
		{row: "W3", data: "bare/whole.txt", o: Options{Total: 29}, want: "FILE_TOTAL_LINES=29, but index DIR/bare/whole.txt_index.txt starts at byte 0 and has 30 entries: it is the index of the whole file DIR/bare/whole.txt, which has one entry per line: unset FILE_TOTAL_LINES, or set it to 30"},
		{row: "W4", data: "bare/head.txt", o: Options{First: 1, Last: 10, Total: 30}, first: 1, last: 10, total: 30, layout: "first slice"},
		{row: "W4", data: "bare/head.txt", o: Options{Total: 30}, first: 1, last: 10, total: 30, layout: "first slice"},
		{row: "W5", data: "bare/head.txt", o: Options{Last: 5, Total: 30}, want: "FILE_TOTAL_LINES=30 is not the 10 entries of index DIR/bare/head.txt_index.txt, so the index is the first slice of a longer file, lines 1-10, but INDEX_LAST_LINE_NUMBER=5"},
		{row: "W6", data: "bare/whole.txt", o: Options{First: 11}, want: "index DIR/bare/whole.txt_index.txt starts at byte 0 and has 30 entries, and INDEX_FIRST_LINE_NUMBER=11: it is either the whole file's (then set INDEX_LAST_LINE_NUMBER to at most 30) or a slice from line 11 written by an older lines shard (then set INDEX_LAST_LINE_NUMBER=40"},
		{row: "W7", data: "bare/rebased.txt", o: Options{First: 11, Last: 20, Total: 30}, first: 11, last: 20, total: 30, layout: "slice"},
		{row: "W8", data: "bare/whole.txt", o: Options{First: 11, Last: 20, Total: 30}, first: 11, last: 20, total: 30, layout: "whole file"},
		{row: "W9", data: "bare/rebased.txt", o: Options{First: 2, Last: 5, Total: 300},
			want: "FILE_TOTAL_LINES=300, but index DIR/bare/rebased.txt_index.txt, read as the whole file's (entry 0 is byte 0, and lines 2-5 fit in its 10 entries), says data DIR/bare/rebased.txt has 10 lines. If DIR/bare/rebased.txt is a slice written by lines shard, start it beside its manifest.json with FILE_REPOSITORY_FILE_PATH alone; if it is the whole file, unset FILE_TOTAL_LINES or set it to 10"},
		{row: "W10", data: "bare/whole.txt", o: Options{First: 20, Last: 40}, want: "index DIR/bare/whole.txt_index.txt has 30 entries: too few for lines 20 to 40 of a whole file, and not exactly the 21 of a slice of them"},
		{row: "W11", data: "bare/empty.txt", first: 1, last: 0, total: 0, layout: "whole file"},
		{row: "W12", data: "bare/nonempty.txt", want: "index DIR/bare/nonempty.txt_index.txt is empty but data DIR/bare/nonempty.txt has 2 bytes: rebuild the index (lines index DIR/bare/nonempty.txt)"},
		{row: "W13", data: "bare/grown.txt", o: Options{First: 1, Last: 10}, want: "data DIR/bare/grown.txt has more lines than index DIR/bare/grown.txt_index.txt"},
	} {
		t.Run(tc.row+" "+tc.data, func(t *testing.T) {
			o := tc.o
			o.DataPath = filepath.Join(f.dir, tc.data)
			o.IndexPath = o.DataPath + "_index.txt"
			sh, err := Open(o)
			if tc.want != "" {
				require.Error(t, err)
				assert.ErrorIs(t, err, ErrMismatch)
				assert.Contains(t, err.Error(), strings.ReplaceAll(tc.want, "DIR/", f.dir+"/"))
				return
			}
			require.NoError(t, err)
			defer sh.Close()
			assert.Equal(t, tc.layout, sh.Layout())
			assert.Equal(t, tc.first, sh.First())
			assert.Equal(t, tc.last, sh.Last())
			if tc.total == unknown {
				assert.False(t, sh.TotalKnown())
			} else {
				assert.True(t, sh.TotalKnown())
				assert.Equal(t, tc.total, sh.Total())
			}
			lines := f.lines
			switch tc.data {
			case "bare/end.txt":
				lines = [][]byte{[]byte("a\n"), []byte("b\n"), []byte("c")}
			case "bare/empty.txt":
				lines = nil
			}
			checkServes(t, sh, lines)
		})
	}
}

// checkServes: every line of the shard's range is the file's, other lines
// are 421, lines beyond the end 413, and negative numbers are the file's.
func checkServes(t *testing.T, sh *Shard, lines [][]byte) {
	total := int64(len(lines))
	for n := sh.First(); n <= sh.Last(); n++ {
		assert.Equal(t, string(lines[n-1]), string(readLine(t, sh, n, 64<<10)), "line %d", n)
		if sh.TotalKnown() {
			assert.Equal(t, string(lines[n-1]), string(readLine(t, sh, n-total-1, 64<<10)), "line %d counted from the end", n-total-1)
		}
	}
	for _, n := range []int64{sh.First() - 1, sh.Last() + 1, -1, -total} {
		if n == 0 || n < -total || (n > 0 && n >= sh.First() && n <= sh.Last()) || (n < 0 && sh.TotalKnown() && n+total+1 >= sh.First() && n+total+1 <= sh.Last()) {
			continue
		}
		if n > total && sh.TotalKnown() {
			continue
		}
		_, err := sh.Resolve(n)
		assert.ErrorIs(t, err, lineno.ErrNotHere, "line %d", n)
	}
	_, err := sh.Resolve(total + 1)
	if sh.TotalKnown() {
		assert.ErrorIs(t, err, lineno.ErrBeyondEnd, "line %d", total+1)
	} else {
		assert.ErrorIs(t, err, lineno.ErrNotHere, "line %d: a shard not told the total sends it on", total+1)
	}
}
