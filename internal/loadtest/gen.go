package loadtest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/lineserver/lineserver/internal/atomicfile"
	"github.com/lineserver/lineserver/internal/index"
)

// generatorVersion changes whenever generate writes other bytes for the
// same size and seed, so that a file kept from an older version is made
// again rather than reused.
const generatorVersion = 1

// words make up the text of the generated lines: ASCII, and some UTF-8 of
// two to four bytes a character.
var words = []string{
	"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
	"iota", "kappa", "lambda", "mu", "line", "server", "shard", "index",
	"γάμμα", "дельта", "日本語", "naïve", "café", "🙂", "0", "42", "1999",
	"the", "of", "and", "a", "to", "in", "is", "it", "that", "was",
}

// textSize is the size of the text that lines are cut from; it is larger
// than the longest line.
const textSize = 1 << 20

// lineLength draws the length of a line, its terminator not included,
// from a mix that looks like real text files: 5% empty lines, 60% short
// (1 to 80 bytes), 30% medium (80 to 400), 4.9% long (400 to 4,000) and
// 0.1% very long (4,000 to 204,000 bytes, beyond the shard's 64 KiB read
// buffer, so its streaming path runs too). The mean is about 300 bytes.
func lineLength(r *rand.Rand) int {
	switch u := r.IntN(1000); {
	case u < 50:
		return 0
	case u < 650:
		return 1 + r.IntN(80)
	case u < 950:
		return 80 + r.IntN(320)
	case u < 999:
		return 400 + r.IntN(3600)
	default:
		return 4000 + r.IntN(200_000)
	}
}

// generate writes exactly size bytes of text lines to w and returns the
// number of lines: the same bytes for the same size and seed. Lengths
// follow lineLength; one line in a hundred ends with "\r\n"; the last line
// is cut to fit and still ends with '\n'. progress, if not nil, is called
// now and then with the bytes written so far.
func generate(ctx context.Context, w io.Writer, size int64, seed uint64, progress func(done int64)) (lines int64, err error) {
	// PCG's output is fixed by the Go specification of math/rand/v2, so
	// the same seed gives the same file with any Go version.
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	text := make([]byte, 0, textSize+16)
	for len(text) < textSize {
		text = append(text, words[r.IntN(len(words))]...)
		text = append(text, ' ')
	}
	text = text[:textSize]
	const flushAt = 1 << 20
	buf := make([]byte, 0, flushAt+256<<10)
	var done int64
	for done < size {
		n := int64(lineLength(r))
		crlf := n > 0 && r.IntN(100) == 0
		if rest := size - done - 1; n >= rest {
			n, crlf = rest, false
		}
		if crlf {
			n--
		}
		o, before := r.IntN(textSize-int(n)+1), len(buf)
		buf = append(buf, text[o:o+int(n)]...)
		if crlf {
			buf = append(buf, '\r')
		}
		buf = append(buf, '\n')
		done += int64(len(buf) - before)
		lines++
		if len(buf) >= flushAt || done == size {
			if err := ctx.Err(); err != nil {
				return lines, err
			}
			if _, err := w.Write(buf); err != nil {
				return lines, err
			}
			buf = buf[:0]
			if progress != nil {
				progress(done)
			}
		}
	}
	return lines, nil
}

// dataset is a generated data file and its index.
type dataset struct {
	// Size is the data file's size in bytes; Seed made its bytes.
	Size int64  `json:"size"`
	Seed uint64 `json:"seed"`
	// Lines is the number of lines.
	Lines int64 `json:"lines"`
	// Generator is the generatorVersion that wrote it.
	Generator int `json:"generator"`
	// Data and Index are the files' paths.
	Data  string `json:"-"`
	Index string `json:"-"`
	// Reused tells that both files were there from an earlier run;
	// GenerateTime and IndexTime are then zero.
	Reused       bool          `json:"-"`
	GenerateTime time.Duration `json:"-"`
	IndexTime    time.Duration `json:"-"`
	// Cached is the fraction of the data file in the page cache when the
	// run found it, after warming it (Warmed), and at the end of the run;
	// negative when not measured.
	Cached, CachedWarm, CachedEnd float64 `json:"-"`
	Warmed                        bool    `json:"-"`
}

// name is the dataset's size as the report shows it, such as "1GB".
func (d *dataset) name() string { return formatSize(d.Size) }

// ensureData returns the dataset of size and seed in dir: it reuses the
// files of an earlier run when their description file says they are of the
// same size, seed and generator version and their sizes agree, and
// otherwise generates the data and builds its index with the project's
// index builder. Files are written under temporary names and renamed when
// complete, so an interrupted run leaves nothing that looks reusable.
// progress, if not nil, is called with "generate" or "index", the bytes
// done and the total.
func ensureData(ctx context.Context, dir string, size int64, seed uint64, progress func(stage string, done, total int64)) (*dataset, error) {
	if progress == nil {
		progress = func(string, int64, int64) {}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	base := filepath.Join(dir, fmt.Sprintf("lines-%s-seed%d.txt", formatSize(size), seed))
	d := &dataset{Size: size, Seed: seed, Generator: generatorVersion, Data: base, Index: base + "_index.txt"}
	if old := reusable(d); old != nil {
		old.Data, old.Index, old.Reused = d.Data, d.Index, true
		return old, nil
	}
	os.Remove(base + ".json")

	start := time.Now()
	var lines int64
	err := atomicfile.Write(base, func(f *os.File) (err error) {
		bw := bufio.NewWriterSize(f, 4<<20)
		if lines, err = generate(ctx, bw, size, seed, func(done int64) { progress("generate", done, size) }); err != nil {
			return err
		}
		return bw.Flush()
	})
	if err != nil {
		return nil, fmt.Errorf("generate %s: %w", base, err)
	}
	d.GenerateTime = time.Since(start)

	start = time.Now()
	f, err := os.Open(base)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	indexed, err := index.BuildFile(ctx, d.Index, f, index.Options{Progress: func(done int64) { progress("index", done, size) }})
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", base, err)
	}
	d.IndexTime = time.Since(start)
	if indexed != lines {
		return nil, fmt.Errorf("index %s: %d entries for %d generated lines", base, indexed, lines)
	}
	d.Lines = lines
	if err := atomicfile.Write(base+".json", func(f *os.File) error { return json.NewEncoder(f).Encode(d) }); err != nil {
		return nil, err
	}
	return d, nil
}

// reusable is the dataset that want's description file describes, when
// that is want (the same size, seed and generator version) and the files
// on disk have the sizes it says; otherwise nil.
func reusable(want *dataset) *dataset {
	var d dataset
	b, err := os.ReadFile(want.Data + ".json")
	if err != nil || json.Unmarshal(b, &d) != nil || d.Size != want.Size || d.Seed != want.Seed || d.Generator != want.Generator || d.Lines <= 0 {
		return nil
	}
	data, err1 := os.Stat(want.Data)
	idx, err2 := os.Stat(want.Index)
	if err1 != nil || err2 != nil || data.Size() != d.Size || idx.Size() != d.Lines*index.EntrySize {
		return nil
	}
	return &d
}
