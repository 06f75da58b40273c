package shard

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/lineserver/lineserver/internal/manifest"
)

// ManifestName is the file beside a slice, written by `lines shard`, that
// says which lines the slice holds.
const ManifestName = "manifest.json"

// The rules that decide what an index is and which lines a shard serves
// are in docs/design.md ("Index and slice rules"), one row each; every row has a test in
// layout_test.go. In short: a manifest beside the data that names it says
// it all; otherwise an index whose entry 0 is not 0 is a slice that kept
// the whole file's offsets, whose first line must be set; otherwise the
// index is the whole file's (one entry per line of the file, so the file
// has as many lines as the index has entries) unless the settings can
// only mean a slice. What cannot be told apart is refused.

// told is what the manifest beside the data says about it.
type told struct {
	path               string
	first, last, total int64
	// whole is true when several shards name the data: it is the whole
	// file, served in ranges (lines shard --no-split).
	whole bool
}

// setRange decides which lines the shard serves and the line number of
// index entry 0.
func (sh *Shard) setRange(o Options) error {
	if sh.entries > 0 {
		var err error
		if sh.base, err = sh.entry(0); err != nil {
			return err
		}
	}
	m, err := sh.manifestBeside(o)
	if err != nil {
		return err
	}
	switch {
	case m != nil && m.whole:
		if sh.entries != m.total {
			return sh.mismatch("index %s has %d entries, but manifest %s says data %s, the whole file, has %d lines: "+
				"rebuild the index (lines index %s) or the manifest (lines shard)", sh.indexPath, sh.entries, m.path, sh.dataPath, m.total, sh.dataPath)
		}
		if o.Total != 0 && o.Total != m.total {
			return sh.mismatch("FILE_TOTAL_LINES=%d disagrees with manifest %s, which says data %s has %d lines: unset FILE_TOTAL_LINES",
				o.Total, m.path, sh.dataPath, m.total)
		}
		return sh.whole(o, "whole file ("+ManifestName+")")
	case m != nil:
		return sh.fromManifest(o, m)
	case sh.base != 0:
		return sh.globalSlice(o)
	}
	return sh.fromStart(o)
}

// manifestBeside reads the manifest beside the data file, if there is one
// and it names the data file. A manifest there that cannot be read is an
// error: it would say what the data is.
func (sh *Shard) manifestBeside(o Options) (*told, error) {
	if o.NoManifest {
		return nil, nil
	}
	path := filepath.Join(filepath.Dir(o.DataPath), ManifestName)
	m, err := manifest.Load(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, sh.mismatch("%v: it is beside data %s, so the shard reads it to learn which lines the data holds: fix it, or move it away",
			err, sh.dataPath)
	}
	var t *told
	for i, s := range m.Shards {
		fi, err := os.Stat(m.DataPath(i))
		if err != nil || !os.SameFile(fi, sh.dataInfo) {
			continue
		}
		ii, err := os.Stat(m.IndexPath(i))
		if err != nil || !os.SameFile(ii, sh.indexInfo) {
			return nil, sh.mismatch("manifest %s says the index of data %s is %s, but the shard opened index %s (INDEX_FILE_PATH): "+
				"unset INDEX_FILE_PATH, or fix the manifest", path, sh.dataPath, m.IndexPath(i), sh.indexPath)
		}
		if t != nil {
			t.whole = true
			continue
		}
		t = &told{path: path, first: s.First, last: s.Last, total: m.TotalLines}
	}
	return t, nil
}

// fromManifest serves the lines the manifest gives the data; settings that
// are set must say the same.
func (sh *Shard) fromManifest(o Options, m *told) error {
	var wrong, names []string
	for _, s := range []struct {
		name      string
		set, want int64
	}{
		{"INDEX_FIRST_LINE_NUMBER", o.First, m.first},
		{"INDEX_LAST_LINE_NUMBER", o.Last, m.last},
		{"FILE_TOTAL_LINES", o.Total, m.total},
	} {
		if s.set != 0 && s.set != s.want {
			wrong = append(wrong, fmt.Sprintf("%s=%d", s.name, s.set))
			names = append(names, s.name)
		}
	}
	if len(wrong) > 0 {
		return sh.mismatch("%s disagree%s with manifest %s, which says data %s holds lines %d-%d of %d: "+
			"unset %s (the manifest gives the range), or start the shard on the data that holds those lines",
			strings.Join(wrong, " and "), plural(len(wrong)), m.path, sh.dataPath, m.first, m.last, m.total, strings.Join(names, " and "))
	}
	if n := m.last - m.first + 1; sh.entries != n {
		return sh.mismatch("index %s has %d entries, but manifest %s says data %s holds lines %d-%d, %d lines: "+
			"the files and the manifest are of different runs; cut the file again (lines shard)",
			sh.indexPath, sh.entries, m.path, sh.dataPath, m.first, m.last, n)
	}
	sh.first, sh.last, sh.total, sh.line0 = m.first, m.last, m.total, m.first
	sh.totalKnown, sh.layout = true, "slice ("+ManifestName+")"
	return nil
}

func plural(n int) string {
	if n == 1 {
		return "s"
	}
	return ""
}

// globalSlice serves an index whose entry 0 is not 0: a slice that kept
// the whole file's offsets, as the reference's and lines shard's do. Only
// its first line cannot be read from it.
func (sh *Shard) globalSlice(o Options) error {
	switch o.First {
	case 0:
		return sh.mismatch("index %s starts at byte %d, not 0: it is a slice of a larger file (it keeps the whole file's offsets), "+
			"and no %s beside data %s names it: set INDEX_FIRST_LINE_NUMBER to its first line (and FILE_TOTAL_LINES to the whole file's lines), "+
			"or keep the %s that lines shard wrote beside it",
			sh.indexPath, sh.base, ManifestName, sh.dataPath, ManifestName)
	case 1:
		return sh.mismatch("INDEX_FIRST_LINE_NUMBER=1, but index %s starts at byte %d, not 0, where line 1 starts: "+
			"it is a slice from a later line; set INDEX_FIRST_LINE_NUMBER to its first line, or keep the %s that lines shard wrote beside data %s",
			sh.indexPath, sh.base, ManifestName, sh.dataPath)
	}
	return sh.slice(o, "slice")
}

// slice serves the index as the slice of lines First to First+entries-1.
func (sh *Shard) slice(o Options, layout string) error {
	e := sh.entries
	if o.Last != 0 && e != o.Last-o.First+1 {
		return sh.mismatch("index %s is a slice of %d lines (one entry per line), but INDEX_FIRST_LINE_NUMBER=%d and INDEX_LAST_LINE_NUMBER=%d are %d lines: "+
			"set INDEX_LAST_LINE_NUMBER=%d, or unset it", sh.indexPath, e, o.First, o.Last, o.Last-o.First+1, o.First+e-1)
	}
	sh.first, sh.last, sh.line0, sh.layout = o.First, o.First+e-1, o.First, layout
	if o.Total != 0 {
		if o.Total < sh.last {
			return sh.mismatch("FILE_TOTAL_LINES=%d is below the last line served, %d", o.Total, sh.last)
		}
		sh.total, sh.totalKnown = o.Total, true
		return nil
	}
	// A slice whose data does not end with '\n' ends the file.
	var b [1]byte
	if _, err := sh.data.ReadAt(b[:], sh.dataSize-1); err != nil {
		return fmt.Errorf("data %s: %w", sh.dataPath, err)
	}
	if b[0] != '\n' {
		sh.total, sh.totalKnown = sh.last, true
	}
	return nil
}

// fromStart decides what an index whose entry 0 is 0 is, with no manifest
// to say: the whole file's, the first slice of a longer file, or a slice
// rebased by an older lines shard.
func (sh *Shard) fromStart(o Options) error {
	e := sh.entries
	if o.First <= 1 {
		switch {
		case o.Total == 0 || o.Total == e:
			return sh.whole(o, "whole file")
		case o.Total < e:
			return sh.mismatch("FILE_TOTAL_LINES=%d, but index %s starts at byte 0 and has %d entries: it is the index of the whole file %s, "+
				"which has one entry per line: unset FILE_TOTAL_LINES, or set it to %d", o.Total, sh.indexPath, e, sh.dataPath, e)
		case e == 0:
			return sh.mismatch("index %s is empty, but FILE_TOTAL_LINES=%d: a slice holds at least one line; rebuild the index (lines index %s)",
				sh.indexPath, o.Total, sh.dataPath)
		case o.Last == 0 || o.Last == e:
			// Lines 1 to e of a longer file: the same bytes as the whole
			// file's first e lines, and FILE_TOTAL_LINES says there are more.
			sh.first, sh.last, sh.total, sh.line0 = 1, e, o.Total, 1
			sh.totalKnown, sh.layout = true, "first slice"
			return nil
		}
		return sh.mismatch("FILE_TOTAL_LINES=%d is not the %d entries of index %s, so the index is the first slice of a longer file, lines 1-%d, "+
			"but INDEX_LAST_LINE_NUMBER=%d: set INDEX_LAST_LINE_NUMBER=%d for the slice, or unset FILE_TOTAL_LINES if %s is the whole file",
			o.Total, e, sh.indexPath, e, o.Last, e, sh.dataPath)
	}
	switch {
	case o.Last == 0:
		return sh.mismatch("index %s starts at byte 0 and has %d entries, and INDEX_FIRST_LINE_NUMBER=%d: it is either the whole file's "+
			"(then set INDEX_LAST_LINE_NUMBER to at most %d) or a slice from line %d written by an older lines shard "+
			"(then set INDEX_LAST_LINE_NUMBER=%d, or cut the file again with lines shard and start the slice beside its %s)",
			sh.indexPath, e, o.First, e, o.First, o.First+e-1, ManifestName)
	case e == o.Last-o.First+1:
		// Not the whole file's: it has too few entries for those lines.
		return sh.slice(o, "slice")
	case o.Last <= e:
		return sh.whole(o, "whole file")
	}
	return sh.mismatch("index %s has %d entries: too few for lines %d to %d of a whole file, and not exactly the %d of a slice of them: "+
		"check INDEX_FIRST_LINE_NUMBER and INDEX_LAST_LINE_NUMBER", sh.indexPath, e, o.First, o.Last, o.Last-o.First+1)
}

// whole serves lines First to Last of a whole file's index, which has one
// entry per line of the file.
func (sh *Shard) whole(o Options, layout string) error {
	e := sh.entries
	sh.first, sh.last, sh.total, sh.line0 = max(o.First, 1), o.Last, e, 1
	sh.totalKnown, sh.layout = true, layout
	if sh.last == 0 {
		sh.last = e
	}
	if o.Total != 0 && o.Total != e {
		return sh.mismatch("FILE_TOTAL_LINES=%d, but index %s, read as the whole file's (entry 0 is byte 0, and lines %d-%d fit in its %d entries), "+
			"says data %s has %d lines. If %s is a slice written by lines shard, start it beside its %s with FILE_REPOSITORY_FILE_PATH alone; "+
			"if it is the whole file, unset FILE_TOTAL_LINES or set it to %d",
			o.Total, sh.indexPath, sh.first, sh.last, e, sh.dataPath, e, sh.dataPath, ManifestName, e)
	}
	switch {
	case e == 0 && sh.first == 1 && sh.last == 0:
		if sh.dataSize > 0 {
			return sh.mismatch("index %s is empty but data %s has %d bytes: rebuild the index (lines index %s)",
				sh.indexPath, sh.dataPath, sh.dataSize, sh.dataPath)
		}
	case sh.last > e:
		return sh.mismatch("index %s has %d entries: too few for lines %d to %d (check INDEX_FIRST_LINE_NUMBER and INDEX_LAST_LINE_NUMBER)",
			sh.indexPath, e, sh.first, sh.last)
	}
	return nil
}
