package lineserver

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReadmeExamples runs each `$ curl ...` example of the README against
// the sample file and checks that it prints what the README shows, but for
// the Date header and the ETag's value, which depend on the clock and the
// checkout.
func TestReadmeExamples(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	s, err := Open(context.Background(), envconfig.MapLookuper(map[string]string{
		"FILE_REPOSITORY_FILE_PATH": "testdata/sample.txt",
	}), io.Discard)
	require.NoError(t, err)
	srv := httptest.NewServer(s)
	defer srv.Close()

	examples := curlExamples(string(readme))
	require.NotEmpty(t, examples, "the README shows curl examples")
	for _, ex := range examples {
		t.Run(ex.command, func(t *testing.T) {
			args := regexp.MustCompile(`'[^']*'|\S+`).FindAllString(ex.command, -1)
			var include bool
			req, err := http.NewRequest("GET", "", nil)
			require.NoError(t, err)
			for i := 1; i < len(args); i++ {
				switch a := args[i]; {
				case a == "-i":
					include = true
				case a == "-H":
					i++
					k, v, _ := strings.Cut(strings.Trim(args[i], "'"), ": ")
					req.Header.Set(k, v)
				case strings.HasPrefix(a, "localhost:8080"):
					req.URL, err = req.URL.Parse(srv.URL + strings.TrimPrefix(a, "localhost:8080"))
					require.NoError(t, err)
				default:
					t.Fatalf("the test does not know curl's %q", a)
				}
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			got := string(body)
			if include {
				got = head(resp) + "\n" + got
			}
			assert.Equal(t, ex.output, got)
		})
	}
}

type example struct{ command, output string }

// curlExamples finds the lines "$ curl ..." in the README's sh blocks and
// the lines they print, up to the next "$ " or the end of the block.
func curlExamples(readme string) []example {
	var out []example
	var cur *example
	inBlock := false
	for _, line := range strings.Split(readme, "\n") {
		switch {
		case strings.HasPrefix(line, "```"):
			inBlock = !inBlock
			cur = nil
		case inBlock && strings.HasPrefix(line, "$ curl "):
			cmd, _, _ := strings.Cut(strings.TrimPrefix(line, "$ "), " #")
			out = append(out, example{command: strings.TrimSpace(cmd)})
			cur = &out[len(out)-1]
		case inBlock && cur != nil:
			cur.output += line + "\n"
		}
	}
	return out
}

// head prints a response's status line and headers as curl -i does, less
// Date, with the ETag's value as the README shows it.
func head(resp *http.Response) string {
	var keys []string
	for k := range resp.Header {
		if k != "Date" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	b := resp.Proto + " " + resp.Status + "\n"
	for _, k := range keys {
		v := resp.Header.Get(k)
		if k == "Etag" {
			v = regexp.MustCompile(`"[0-9a-z]+-`).ReplaceAllString(v, `"1rgqg4u59psfb-`)
		}
		b += k + ": " + v + "\n"
	}
	return b
}

// Command blocks of the documentation: README.md and docs/*.md.
//
// The rule, for every fenced block tagged sh (blocks tagged text, or not
// tagged, are not commands: synopses, diagrams):
//
//   - every block passes `bash -n`, but for transcripts;
//   - a transcript, whose first line starts with "$ ", belongs in the
//     README, and TestReadmeExamples runs its `$ curl` commands against the
//     sample file;
//   - every other block is marked on the line before its fence:
//     `<!-- run -->`: TestDocCommandBlocks runs it here with `bash -eu -o
//     pipefail`, in a temporary folder holding big.txt (a copy of
//     testdata/sample.txt) and bin/ with each binary the block names
//     (bin/NAME, built from ./cmd/NAME), and it must exit 0 within two
//     minutes;
//     `<!-- run by TestName (pkg/dir) -->`: that test, in that package,
//     runs the block as written (the own-file recipe needs free ports,
//     nginx and a file of its own), and the test must exist;
//     `<!-- not run: REASON -->`: it cannot run here (it serves until
//     stopped, needs Docker or Google Cloud, or runs for minutes), and the
//     reason says so;
//   - a block without a mark fails, so that a new command block is a
//     decision, not an oversight.
//
// With -short, the marked blocks are checked but not run.

// docBlock is one fenced sh block of a documentation file.
type docBlock struct {
	file string
	line int    // of the opening fence
	mark string // "run", "not run: ...", or ""
	body string
}

func (b docBlock) String() string { return fmt.Sprintf("%s:%d", b.file, b.line) }

// docFiles are the documentation files whose command blocks are checked.
func docFiles(t *testing.T) []string {
	files, err := filepath.Glob("docs/*.md")
	require.NoError(t, err)
	return append([]string{"README.md"}, files...)
}

var markRE = regexp.MustCompile(`^<!-- (run|run by \w+ \([\w/]+\)|not run: .+) -->$`)

// shBlocks finds the sh blocks of a Markdown text and their marks.
func shBlocks(file, text string) []docBlock {
	var out []docBlock
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "```sh" {
			if strings.HasPrefix(lines[i], "```") { // skip other blocks whole
				for i++; i < len(lines) && !strings.HasPrefix(lines[i], "```"); i++ {
				}
			}
			continue
		}
		b := docBlock{file: file, line: i + 1}
		if i > 0 {
			if m := markRE.FindStringSubmatch(lines[i-1]); m != nil {
				b.mark = m[1]
			}
		}
		var body []string
		for i++; i < len(lines) && !strings.HasPrefix(lines[i], "```"); i++ {
			body = append(body, lines[i])
		}
		b.body = strings.Join(body, "\n") + "\n"
		out = append(out, b)
	}
	return out
}

func TestDocCommandBlocks(t *testing.T) {
	bash, err := exec.LookPath("bash")
	require.NoError(t, err)
	var run []docBlock
	for _, file := range docFiles(t) {
		text, err := os.ReadFile(file)
		require.NoError(t, err)
		for _, b := range shBlocks(file, string(text)) {
			if strings.HasPrefix(b.body, "$ ") {
				assert.Equal(t, "README.md", b.file, "%v: a transcript outside the README is not run by any test", b)
				continue
			}
			cmd := exec.Command(bash, "-n")
			cmd.Stdin = strings.NewReader(b.body)
			out, err := cmd.CombinedOutput()
			assert.NoError(t, err, "%v: bash -n: %s", b, out)
			switch {
			case b.mark == "run":
				run = append(run, b)
			case strings.HasPrefix(b.mark, "run by "):
				assertTestExists(t, b)
			case b.mark == "":
				t.Errorf("%v: a command block with no mark: put <!-- run --> or <!-- not run: REASON --> on the line before it (see the rule in readme_test.go)", b)
			}
		}
	}
	require.NotEmpty(t, run, "the documentation has commands that run here")
	if testing.Short() {
		t.Skip("-short: the runnable blocks are checked, not run")
	}
	built := map[string]string{}
	binRE := regexp.MustCompile(`\bbin/(\w+)`)
	for _, b := range run {
		for _, m := range binRE.FindAllStringSubmatch(b.body, -1) {
			if built[m[1]] == "" {
				built[m[1]] = buildCommand(t, m[1])
			}
		}
	}
	sample, err := os.ReadFile("testdata/sample.txt")
	require.NoError(t, err)
	for _, b := range run {
		t.Run(b.String(), func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "big.txt"), sample, 0o644))
			require.NoError(t, os.Mkdir(filepath.Join(dir, "bin"), 0o755))
			for name, bin := range built {
				require.NoError(t, os.Symlink(bin, filepath.Join(dir, "bin", name)))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bash, "-eu", "-o", "pipefail")
			cmd.Dir = dir
			cmd.Stdin = strings.NewReader(b.body)
			out, err := cmd.CombinedOutput()
			assert.NoError(t, err, "%v:\n%s\n%s", b, b.body, out)
		})
	}
}

// buildCommand builds ./cmd/name and returns the binary's path.
func buildCommand(t *testing.T, name string) string {
	bin := filepath.Join(t.TempDir(), name)
	out, err := exec.Command("go", "build", "-o", bin, "./cmd/"+name).CombinedOutput()
	require.NoError(t, err, "go build ./cmd/%s: %s", name, out)
	return bin
}

// TestReadmeTroubleshooting checks that the start-up errors the README's
// troubleshooting list quotes are the ones a shard prints, as
// cmd/lineserver prints them ("lineserver: " and the error).
func TestReadmeTroubleshooting(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	other, err := os.ReadFile("testdata/sample.txt_index.txt") // the index of another file
	require.NoError(t, err)
	t.Chdir(t.TempDir()) // the README's paths are relative: big.txt
	for _, tc := range []struct {
		name  string
		files map[string][]byte
		env   map[string]string
		quote string
	}{
		{"no data file set", nil, map[string]string{},
			"lineserver: invalid setting: FILE_REPOSITORY_FILE_PATH is required: the data file to serve"},
		{"no data file", nil, map[string]string{"FILE_REPOSITORY_FILE_PATH": "big.txt"},
			"lineserver: data file (FILE_REPOSITORY_FILE_PATH): open big.txt: no such file or directory"},
		{"no index", map[string][]byte{"big.txt": []byte("a\nb\n")}, map[string]string{"FILE_REPOSITORY_FILE_PATH": "big.txt"},
			"lineserver: index file (INDEX_FILE_PATH): open big.txt_index.txt: no such file or directory"},
		{"another file's index", map[string][]byte{"big.txt": []byte("a\nb\n"), "big.txt_index.txt": other}, map[string]string{"FILE_REPOSITORY_FILE_PATH": "big.txt"},
			"lineserver: files do not fit: index big.txt_index.txt does not fit data big.txt"},
		{"a slice told another range", slice(true), map[string]string{"FILE_REPOSITORY_FILE_PATH": "big.txt",
			"INDEX_FIRST_LINE_NUMBER": "102", "INDEX_LAST_LINE_NUMBER": "200", "FILE_TOTAL_LINES": "300"},
			"lineserver: files do not fit: INDEX_FIRST_LINE_NUMBER=102 and INDEX_LAST_LINE_NUMBER=200 and FILE_TOTAL_LINES=300 disagree with manifest"},
		{"a slice away from its manifest", slice(false), map[string]string{"FILE_REPOSITORY_FILE_PATH": "big.txt"},
			"lineserver: files do not fit: index big.txt_index.txt starts at byte"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, name := range []string{"big.txt", "big.txt_index.txt", "manifest.json"} {
				os.Remove(name)
			}
			for name, data := range tc.files {
				require.NoError(t, os.WriteFile(name, data, 0o644))
			}
			_, err := Open(context.Background(), envconfig.MapLookuper(tc.env), io.Discard)
			require.Error(t, err)
			assert.Contains(t, "lineserver: "+err.Error(), tc.quote, "what the shard prints")
			assert.Contains(t, string(readme), "`"+tc.quote, "what the README quotes")
		})
	}
}

// TestDocLinks checks that every relative link of README.md and docs/*.md
// (and of docs/bench/archive.md) leads to a file of the repository.
func TestDocLinks(t *testing.T) {
	linkRE := regexp.MustCompile(`\]\(([^)#\s]+)(#[^)]*)?\)`)
	for _, file := range append(docFiles(t), "docs/bench/archive.md") {
		text, err := os.ReadFile(file)
		require.NoError(t, err)
		for _, m := range linkRE.FindAllStringSubmatch(string(text), -1) {
			target := m[1]
			if strings.Contains(target, "://") {
				continue
			}
			_, err := os.Stat(filepath.Join(filepath.Dir(file), target))
			assert.NoError(t, err, "%s links to %s", file, target)
		}
	}
}

// TestFiguresLiveInOnePlace checks that no measured figure (a number with
// a unit of time, memory or rate) appears in two of README.md and
// docs/*.md: a page quotes a figure from its report once, and the others
// link to that page.
func TestFiguresLiveInOnePlace(t *testing.T) {
	figureRE := regexp.MustCompile(`\b\d[\d,]*(?:\.\d+)?\s?(?:µs|ms|MiB|requests/s)`)
	where := map[string]string{}
	for _, file := range docFiles(t) {
		text, err := os.ReadFile(file)
		require.NoError(t, err)
		for _, fig := range figureRE.FindAllString(string(text), -1) {
			fig = strings.ReplaceAll(fig, " ", "")
			if other, ok := where[fig]; ok && other != file {
				t.Errorf("%s appears in %s and %s", fig, other, file)
			}
			where[fig] = file
		}
	}
}

// assertTestExists checks that the test a "run by" mark names is in the
// package it names.
func assertTestExists(t *testing.T, b docBlock) {
	var name, dir string
	_, err := fmt.Sscanf(b.mark, "run by %s (%s", &name, &dir)
	require.NoError(t, err, "%v: mark %q", b, b.mark)
	dir = strings.TrimSuffix(dir, ")")
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	require.NoError(t, err)
	for _, f := range files {
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		if strings.Contains(string(src), "func "+name+"(t *testing.T)") {
			return
		}
	}
	t.Errorf("%v: the mark says %s in %s runs this block, but there is no such test", b, name, dir)
}

// slice gives the files of lines 3-4 of a six-line file as lines shard
// writes them: the index keeps the whole file's offsets, and with
// manifest, the manifest.json beside them names them.
func slice(manifest bool) map[string][]byte {
	files := map[string][]byte{
		"big.txt":           []byte("c\nd\n"),
		"big.txt_index.txt": []byte("000000000004\n000000000006\n"),
	}
	if manifest {
		files["manifest.json"] = []byte(`{"total_lines": 6, "shards": [
{"name": "shard-1", "first": 1, "last": 2, "data": "shard-1.txt", "index": "shard-1.txt_index.txt", "urls": ["http://127.0.0.1:9081"]},
{"name": "shard-2", "first": 3, "last": 4, "data": "big.txt", "index": "big.txt_index.txt", "urls": ["http://127.0.0.1:9082"]},
{"name": "shard-3", "first": 5, "last": 6, "data": "shard-3.txt", "index": "shard-3.txt_index.txt", "urls": ["http://127.0.0.1:9083"]}]}`)
	}
	return files
}
