package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/lineserver/lineserver/internal/index"
	"github.com/lineserver/lineserver/internal/manifest"
	"github.com/lineserver/lineserver/internal/shard"
	"github.com/lineserver/lineserver/internal/split"
)

// sharding is what runShard was asked to do.
type sharding struct {
	path     string // the data file
	data     *os.File
	info     os.FileInfo
	dir      string   // --out
	shards   int      // --shards, 0 when --lines-per-shard is given
	perShard int64    // --lines-per-shard
	urls     []string // --url-template, split at commas
}

// runShard cuts a data file into shards, or plans shards over the whole
// file with --no-split, and writes their manifest.
func runShard(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("shard", flag.ContinueOnError)
	var s sharding
	fs.IntVar(&s.shards, "shards", 0, "cut FILE into N shards of about equal bytes")
	fs.Int64Var(&s.perShard, "lines-per-shard", 0, "cut FILE into shards of K lines, the last with the rest")
	fs.StringVar(&s.dir, "out", "", "the folder for the shards and manifest.json (created if missing)")
	tmpl := fs.String("url-template", "http://{name}:8080", "a shard's URL; {name} is its name, {i} its number; commas separate replicas")
	noSplit := fs.Bool("no-split", false, "copy nothing: every shard serves its range from FILE and FILE_index.txt")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	const use = "lines shard FILE (--shards N | --lines-per-shard K) --out DIR [--url-template T] [--no-split]"
	switch {
	case len(pos) != 1:
		return fmt.Errorf("%w: %s: want one FILE, got %d arguments", errUsage, use, len(pos))
	case s.dir == "":
		return fmt.Errorf("%w: %s: --out DIR is required", errUsage, use)
	case (s.shards != 0) == (s.perShard != 0):
		return fmt.Errorf("%w: %s: give either --shards or --lines-per-shard", errUsage, use)
	case s.shards < 0 || s.perShard < 0:
		return fmt.Errorf("%w: %s: the number of shards or lines must be positive", errUsage, use)
	}
	for _, t := range strings.Split(*tmpl, ",") {
		s.urls = append(s.urls, strings.TrimSpace(t))
	}
	check := manifest.Manifest{TotalLines: 1, Shards: []manifest.Shard{{Name: "shard-1", First: 1, Last: 1, Data: "x", URLs: s.expand("shard-1", 1)}}}
	if err := check.Validate(); err != nil {
		return fmt.Errorf("%w: --url-template %q: %w", errUsage, *tmpl, err)
	}

	s.path = pos[0]
	if s.data, s.info, err = openData(s.path); err != nil {
		return err
	}
	defer s.data.Close()
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	old := s.previousFiles(stderr)
	var m *manifest.Manifest
	if *noSplit {
		m, err = s.inPlace(ctx, stdout, stderr)
	} else {
		m, err = s.cut(ctx, stdout, stderr)
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("shard %s: interrupted; %s was not written", s.path, filepath.Join(s.dir, "manifest.json"))
	}
	if errors.Is(err, split.ErrTooFewLines) {
		return fmt.Errorf("cannot cut %s into %d shards: %w", s.path, s.shards, err)
	}
	if err != nil {
		return err
	}
	if err := s.writeManifest(m, stdout); err != nil {
		return err
	}
	s.removeStale(old, m, stdout, stderr)
	return nil
}

// previousFiles lists the data and index files in the folder that the
// manifest already there names: what an earlier run wrote. A missing
// manifest lists none; one that cannot be read is reported and lists none,
// so nothing is removed on a guess.
func (s *sharding) previousFiles(stderr io.Writer) []string {
	path := filepath.Join(s.dir, "manifest.json")
	m, err := manifest.Load(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		fmt.Fprintf(stderr, "lines shard: the earlier %s cannot be read (%v); files it names are left in place\n", path, err)
		return nil
	}
	var files []string
	for i := range m.Shards {
		files = append(files, m.DataPath(i), m.IndexPath(i))
	}
	return files
}

// removeStale removes the files of an earlier run that the new manifest m
// no longer names, such as shard-4.txt after a re-cut into three shards,
// so that the folder holds one consistent set. Only files inside the
// folder are touched; the data file and its index never are. Files are
// compared as files (os.SameFile), not by how their paths are spelled: the
// earlier run may have named the data file relative, this one absolute.
func (s *sharding) removeStale(old []string, m *manifest.Manifest, stdout, stderr io.Writer) {
	m.Dir = s.dir
	keep := []os.FileInfo{s.info}
	named := []string{s.path + "_index.txt"}
	for i := range m.Shards {
		named = append(named, m.DataPath(i), m.IndexPath(i))
	}
	for _, f := range named {
		if fi, err := os.Stat(f); err == nil {
			keep = append(keep, fi)
		}
	}
	dir, err := os.Stat(s.dir)
	if err != nil {
		return
	}
	for _, f := range old {
		fi, err := os.Lstat(f)
		if err != nil || !fi.Mode().IsRegular() || slices.ContainsFunc(keep, func(k os.FileInfo) bool { return os.SameFile(k, fi) }) {
			continue
		}
		if in, err := os.Stat(filepath.Dir(f)); err != nil || !os.SameFile(in, dir) {
			continue
		}
		switch err := os.Remove(f); {
		case err == nil:
			fmt.Fprintf(stdout, "removed %s, which the earlier manifest named and this one does not\n", f)
		case !errors.Is(err, os.ErrNotExist):
			fmt.Fprintf(stderr, "lines shard: could not remove the stale %s: %v\n", f, err)
		}
	}
}

// cut copies each shard's slice of the data into the folder, indexes it,
// and returns the manifest of the slices.
func (s *sharding) cut(ctx context.Context, stdout, stderr io.Writer) (*manifest.Manifest, error) {
	size := s.info.Size()
	var cuts []int64
	var err error
	if s.shards > 0 {
		cuts, err = split.ByBytes(s.data, size, s.shards)
	} else {
		cuts, err = split.ByLines(ctx, io.NewSectionReader(s.data, 0, size), s.perShard)
	}
	if err != nil {
		return nil, err
	}
	bar := newProgress(stderr, 2*size, "sharding")
	defer bar.finish()
	var done int64
	m := &manifest.Manifest{}
	next := int64(1)
	for i := 1; i < len(cuts); i++ {
		name := "shard-" + strconv.Itoa(i)
		dataName := name + ".txt"
		idxName := dataName + "_index.txt"
		dataPath, idxPath := filepath.Join(s.dir, dataName), filepath.Join(s.dir, idxName)
		from, to := cuts[i-1], cuts[i]
		if err := notOver(dataPath, s.info, s.path); err != nil {
			return nil, err
		}
		if err := notOver(idxPath, s.info, s.path); err != nil {
			return nil, err
		}
		if err := split.Copy(ctx, s.data, from, to, dataPath, func(n int64) { bar.set(done + n) }); err != nil {
			return nil, err
		}
		done += to - from
		// The slice's index keeps the whole file's offsets, as the
		// reference's slices do: entry 0 of every slice but the first is
		// then not 0, so no setting can make a shard take it for a whole
		// file's index. A slice whose offsets do not fit 12 digits is
		// rebased; the manifest beside it tells the shard its range.
		shift := from
		if to > index.MaxOffset {
			shift = 0
			fmt.Fprintf(stdout, "%s: offsets beyond %d do not fit its index: rebased to 0; serve it beside %s\n",
				name, int64(index.MaxOffset), filepath.Join(s.dir, "manifest.json"))
		}
		lines, err := index.BuildFile(ctx, idxPath, io.NewSectionReader(s.data, from, to-from), index.Options{
			Progress: func(n int64) { bar.set(done + n) },
			Shift:    shift,
		})
		if err != nil {
			return nil, fmt.Errorf("index %s: %w", dataPath, err)
		}
		done += to - from
		m.Shards = append(m.Shards, manifest.Shard{
			Name: name, First: next, Last: next + lines - 1,
			Data: dataName, Index: idxName, URLs: s.expand(name, i),
		})
		next += lines
		fmt.Fprintf(stdout, "%s: lines %d-%d, %d bytes -> %s\n", name, m.Shards[i-1].First, m.Shards[i-1].Last, to-from, dataPath)
	}
	m.TotalLines = next - 1
	return m, nil
}

// inPlace plans the shards over the whole file and its index, building
// the index if it is missing.
func (s *sharding) inPlace(ctx context.Context, stdout, stderr io.Writer) (*manifest.Manifest, error) {
	idxPath := s.path + "_index.txt"
	if _, err := os.Stat(idxPath); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(stdout, "%s has no index: building %s\n", s.path, idxPath)
		bar := newProgress(stderr, s.info.Size(), "indexing")
		_, err = index.BuildFile(ctx, idxPath, s.data, index.Options{Progress: bar.set})
		bar.finish()
		if err != nil {
			return nil, fmt.Errorf("index %s: %w", s.path, err)
		}
	}
	idx, err := os.Open(idxPath)
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	defer idx.Close()
	lines, err := wholeIndexLines(idx, s.info.Size())
	if err != nil {
		return nil, fmt.Errorf("index %s: %w; check it with: lines verify %s", idxPath, err, s.path)
	}
	// The check every shard makes at start, here before a manifest names
	// the files: 64 entries against the data, and the data's last line
	// against the index's end (a stale index of a file that grew).
	sh, err := shard.Open(shard.Options{DataPath: s.path, IndexPath: idxPath, NoManifest: true})
	if err != nil {
		return nil, fmt.Errorf("%w; check it with: lines verify %s", err, s.path)
	}
	sh.Close()

	var cuts []int64
	if s.shards > 0 {
		if cuts, err = split.IndexByBytes(idx, lines, s.info.Size(), s.shards); err != nil {
			return nil, err
		}
	} else {
		for c := int64(0); c < lines; c += s.perShard {
			cuts = append(cuts, c)
		}
		cuts = append(cuts, lines)
		if lines == 0 {
			cuts = []int64{0, 0}
		}
	}
	m := &manifest.Manifest{TotalLines: lines}
	dataRel, idxRel := relativeTo(s.dir, s.path), relativeTo(s.dir, idxPath)
	for i := 1; i < len(cuts); i++ {
		name := "shard-" + strconv.Itoa(i)
		m.Shards = append(m.Shards, manifest.Shard{
			Name: name, First: cuts[i-1] + 1, Last: cuts[i],
			Data: dataRel, Index: idxRel, URLs: s.expand(name, i),
		})
		fmt.Fprintf(stdout, "%s: lines %d-%d of %s\n", name, cuts[i-1]+1, cuts[i], s.path)
	}
	return m, nil
}

// wholeIndexLines returns the number of entries of the index of a whole
// file of size bytes, after the checks that take no time: whole entries,
// entry 0 at 0, the last entry inside the file. It does not read the rest.
func wholeIndexLines(idx *os.File, size int64) (int64, error) {
	info, err := idx.Stat()
	if err != nil {
		return 0, err
	}
	if info.Size()%index.EntrySize != 0 {
		return 0, fmt.Errorf("its size %d is not a multiple of %d", info.Size(), index.EntrySize)
	}
	lines := info.Size() / index.EntrySize
	if lines == 0 {
		if size > 0 {
			return 0, errors.New("it is empty but the data file is not")
		}
		return 0, nil
	}
	entry := make([]byte, index.EntrySize)
	for _, at := range []int64{0, lines - 1} {
		if _, err := idx.ReadAt(entry, at*index.EntrySize); err != nil {
			return 0, err
		}
		off, err := index.ParseEntry(entry)
		switch {
		case err != nil:
			return 0, fmt.Errorf("entry %d: %w", at, err)
		case at == 0 && off != 0:
			return 0, fmt.Errorf("entry 0 is %d, not 0: it is not the index of a whole file", off)
		case off >= size:
			return 0, fmt.Errorf("line %d starts at byte %d, beyond the data's %d bytes", at+1, off, size)
		}
	}
	return lines, nil
}

// relativeTo returns path relative to dir, or absolute when it cannot be.
func relativeTo(dir, path string) string {
	absDir, err1 := filepath.Abs(dir)
	absPath, err2 := filepath.Abs(path)
	if err1 != nil || err2 != nil {
		return path
	}
	if rel, err := filepath.Rel(absDir, absPath); err == nil {
		return rel
	}
	return absPath
}

// expand fills the URL templates for shard number i called name.
func (s *sharding) expand(name string, i int) []string {
	r := strings.NewReplacer("{name}", name, "{i}", strconv.Itoa(i))
	urls := make([]string, len(s.urls))
	for k, t := range s.urls {
		urls[k] = r.Replace(t)
	}
	return urls
}

// writeManifest checks m and writes it to the folder as manifest.json,
// through a temporary file renamed into place.
func (s *sharding) writeManifest(m *manifest.Manifest, stdout io.Writer) (err error) {
	if err := m.Validate(); err != nil {
		return err
	}
	path := filepath.Join(s.dir, "manifest.json")
	tmp, err := os.CreateTemp(s.dir, ".manifest.json.tmp-*")
	if err != nil {
		return fmt.Errorf("create the manifest: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = m.Write(tmp); err != nil {
		return fmt.Errorf("write the manifest: %w", err)
	}
	if err = tmp.Chmod(0o644); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write the manifest: %w", err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("move the manifest into place: %w", err)
	}
	fmt.Fprintf(stdout, "%s: %d lines in %d shards\n", path, m.TotalLines, len(m.Shards))
	return nil
}
