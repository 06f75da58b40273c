package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TailLines is the most lines of a server's output that a failing test
// prints: a burst that fails leaves thousands of access log lines, which
// would bury the test's own summary.
const TailLines = 50

// problemLine matches a line of output that reports a problem: NGINX's
// error log levels, the JSON and text levels of log/slog, a Go panic.
var problemLine = regexp.MustCompile(`\[(?:warn|error|crit|alert|emerg)\]|"(?:severity|level)":"(?:WARN|WARNING|ERROR)"|level=(?:WARN|ERROR)|^panic: `)

// Tail returns name's output out as a failing test shows it: whole when it
// has at most TailLines lines; else a header with its line count, the
// first line that reports a problem and the file where SaveLog kept it
// all, then its last TailLines lines.
func Tail(t testing.TB, name, out string) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) <= TailLines {
		return fmt.Sprintf("%s:\n%s", name, out)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s (the last %d of %d lines", name, TailLines, len(lines))
	if path, err := SaveLog(t, name, out); err == nil {
		fmt.Fprintf(&b, "; all of them in %s", path)
	}
	b.WriteString("):\n")
	problems := 0
	first := ""
	for _, l := range lines {
		if problemLine.MatchString(l) {
			if problems == 0 {
				first = l
			}
			problems++
		}
	}
	if problems > 0 {
		fmt.Fprintf(&b, "  %d lines report a problem; the first:\n  %s\n  ...\n", problems, first)
	}
	b.WriteString(strings.Join(lines[len(lines)-TailLines:], "\n"))
	b.WriteString("\n")
	return b.String()
}

// SaveLog writes out to a file named for the test and name, in the folder
// LINESERVER_LOGS names (`make test` sets out/logs), else in a new folder
// under the system's temporary folder, which outlives the test for a
// look; it returns the file's path.
func SaveLog(t testing.TB, name, out string) (string, error) {
	dir := os.Getenv("LINESERVER_LOGS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "lineserver-logs")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	safe := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	f, err := os.CreateTemp(dir, safe+"-"+name+"-*.log")
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := f.WriteString(out); err != nil {
		return "", err
	}
	return f.Name(), f.Close()
}
