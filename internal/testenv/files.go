package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lineserver/lineserver/internal/index"
)

// Awkward returns the files every reader of lines must get right, by name:
// "\n" and "\r\n" endings, UTF-8, no final newline, empty lines, an empty
// file, a line of 5 MiB.
func Awkward() map[string][]byte {
	big := strings.Repeat("0123456789abcdef", 5<<20/16)
	return map[string][]byte{
		"lf":               []byte("first\nsecond\nthird\n"),
		"crlf":             []byte("first\r\nsecond\r\nthird\r\n"),
		"utf8":             []byte("naïve café\n日本語のテキスト\n🙂 emoji\nplain\n"),
		"no final newline": []byte("one\ntwo\nthree"),
		"empty lines":      []byte("\n\nmiddle\n\n\nend\n\n"),
		"empty":            {},
		"single newline":   []byte("\n"),
		"5 MiB line":       []byte("short\n" + big + "\nafter\n"),
		"invalid utf8":     []byte("ok\n\xff\xfe\x00bytes\n\"quotes\" and \\ \t tab\n"),
	}
}

// Lines splits data into its lines, each with its own '\n' (the last may
// have none), as the server must serve them.
func Lines(data []byte) [][]byte {
	var lines [][]byte
	for len(data) > 0 {
		i := strings.IndexByte(string(data), '\n')
		if i < 0 {
			lines = append(lines, data)
			break
		}
		lines = append(lines, data[:i+1])
		data = data[i+1:]
	}
	return lines
}

// Varied returns n lines of varied length and content: ASCII, UTF-8, empty
// lines, a "\r\n" now and then, the same for the same n.
func Varied(n int) []byte {
	var b strings.Builder
	words := []string{"alpha", "beta", "γάμμα", "дельта", "epsilon", "日本", "🙂", "zeta", "eta", "theta"}
	seed := uint32(2463534242)
	for i := 1; i <= n; i++ {
		seed ^= seed << 13
		seed ^= seed >> 17
		seed ^= seed << 5
		switch {
		case seed%17 == 0:
			// an empty line
		case seed%23 == 0:
			fmt.Fprintf(&b, "line %d ends with CR\r", i)
		default:
			fmt.Fprintf(&b, "line %d:", i)
			for w := 0; w < int(seed%12); w++ {
				b.WriteString(" ")
				b.WriteString(words[(int(seed)+w)%len(words)])
			}
		}
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// WriteIndexed writes data to dir/name and its index to dir/name_index.txt
// and returns the data file's path.
func WriteIndexed(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	idx, err := index.Of(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+"_index.txt", idx, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// DirHolds fails the test unless dir holds exactly the named entries: no
// temporary file was left behind, nothing is missing.
func DirHolds(t testing.TB, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[string]bool)
	for _, e := range entries {
		got[e.Name()] = true
	}
	want := make(map[string]bool)
	for _, n := range names {
		want[n] = true
	}
	for n := range want {
		if !got[n] {
			t.Errorf("%s: %s is missing", dir, n)
		}
	}
	for n := range got {
		if !want[n] {
			t.Errorf("%s: %s should not be there", dir, n)
		}
	}
}
