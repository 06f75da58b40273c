package lineserver

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

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
