package testenv

import (
	"bufio"
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// NDLine is one object of an NDJSON range: {"number": n, "line": "..."}.
type NDLine struct {
	Number int64  `json:"number"`
	Line   string `json:"line"`
}

// DecodeNDJSON decodes an NDJSON body, one object per line, and checks
// that every object, the last included, ends with '\n'.
func DecodeNDJSON(t testing.TB, body []byte) []NDLine {
	t.Helper()
	var out []NDLine
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var l NDLine
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l), "%q", sc.Bytes())
		out = append(out, l)
	}
	require.NoError(t, sc.Err())
	if len(body) > 0 {
		require.Equal(t, byte('\n'), body[len(body)-1], "every object ends with '\\n'")
	}
	return out
}
