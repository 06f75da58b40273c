package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHelp: --help and -h on lines and on every subcommand print the full
// usage, its FILE or MANIFEST and flags included, to standard output, and
// succeed (exit 0).
func TestHelp(t *testing.T) {
	want := map[string][]string{
		"index":    {"usage: lines index FILE [-o INDEX]", "-o\t"},
		"verify":   {"usage: lines verify FILE [INDEX] | MANIFEST"},
		"shard":    {"usage: lines shard FILE (--shards N | --lines-per-shard K) --out DIR", "-no-split\t", "-url-template\t"},
		"nginx":    {"usage: lines nginx MANIFEST [--listen ADDR]", "-listen\t"},
		"compose":  {"usage: lines compose MANIFEST"},
		"cloudrun": {"usage: lines cloudrun MANIFEST --image IMAGE [--out DIR]", "-image\t"},
		"bench":    {"usage: lines bench [flags]"},
	}
	for _, c := range commands() {
		require.Contains(t, want, c.name, "every subcommand has a case")
		for _, flag := range []string{"--help", "-h"} {
			t.Run(c.name+" "+flag, func(t *testing.T) {
				var stdout, stderr bytes.Buffer
				err := run(context.Background(), []string{c.name, flag}, &stdout, &stderr)
				require.NoError(t, err, "exit 0")
				for _, w := range want[c.name] {
					assert.Contains(t, stdout.String(), w)
				}
				assert.Empty(t, stderr.String())
			})
		}
	}
	for _, flag := range []string{"--help", "-h", "help"} {
		var stdout, stderr bytes.Buffer
		require.NoError(t, run(context.Background(), []string{flag}, &stdout, &stderr))
		assert.True(t, strings.HasPrefix(stdout.String(), "usage: lines COMMAND [ARGS]\n"), stdout.String())
		assert.Contains(t, stdout.String(), "lines index     FILE [-o INDEX]")
	}
}
