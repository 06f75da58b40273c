#!/usr/bin/env bash
# Runs every fuzz target of the module for a bounded time and fails if any
# of them finds an input that breaks it.
#
#   scripts/fuzz.sh                  # every target, FUZZTIME each (default 20s)
#   FUZZTIME=5s scripts/fuzz.sh      # a quick run
#   scripts/fuzz.sh ./router ./internal/lineno   # only these packages
#   FUZZ_GOTOOLCHAIN=local scripts/fuzz.sh       # fuzz with the Go on PATH
#
# Targets are found with `go test -list` in each package that has a
# `func Fuzz` in its tests, so a new target is fuzzed without editing this
# script. Each target runs alone (go test -fuzz takes one target at a
# time), with -run '^$' so the package's other tests are not run again.
#
# When a target fails, Go writes the input that broke it under the
# package's testdata/fuzz/<Target>/ folder. From then on it is a regression
# seed: plain `go test` runs it every time, fuzzing or not. Commit that file
# together with the fix. The script lists every such file and exits 1.
#
# Inputs that merely widened coverage stay in Go's cache
# ($(go env GOCACHE)/fuzz), not in the repository.
set -uo pipefail

cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-20s}
# The fuzzing engine of every Go 1.26 release has a race at the -fuzztime
# deadline (go.dev/issue/75804): a target that found nothing now and then
# fails with "context deadline exceeded" and no saved input. It broke CI
# twice. Go 1.27.0 fixed it in internal/fuzz, so the engine runs on Go
# 1.27.3, which the go command fetches from the module proxy (once, ~76 MB).
# Only the fuzzing runs on it; builds and tests keep go.mod's Go. The seeds
# it saves are plain test inputs that `go test` runs on any Go.
fuzz_go=${FUZZ_GOTOOLCHAIN:-go1.27.3}
gofuzz() { GOTOOLCHAIN=$fuzz_go go test "$@"; }
logdir=$(mktemp -d)
trap 'rm -rf "$logdir"' EXIT

if [ $# -gt 0 ]; then
	pkgs=$(go list "$@") || exit 2
else
	# Packages whose test files declare a fuzz target; go test -list below
	# is the authority on what each one has.
	pkgs=$(go list -f '{{.ImportPath}} {{.Dir}}' ./... | while read -r pkg dir; do
		if grep -qs '^func Fuzz' "$dir"/*_test.go; then echo "$pkg"; fi
	done)
fi

targets=()
for pkg in $pkgs; do
	list=$(go test -list '^Fuzz' "$pkg" 2>&1) || {
		echo "fuzz: go test -list failed in $pkg:" >&2
		echo "$list" >&2
		exit 2
	}
	for name in $(echo "$list" | grep -E '^Fuzz[A-Za-z0-9_]*$'); do
		targets+=("$pkg $name")
	done
done
if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz: no fuzz targets found" >&2
	exit 2
fi

echo "fuzz: ${#targets[@]} targets, $fuzztime each, on $(GOTOOLCHAIN=$fuzz_go go version)"
failed=()
summary=()
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	log="$logdir/$(echo "$pkg.$name" | tr '/' '_').log"
	start=$(date +%s)
	echo "=== $pkg $name"
	gofuzz "$pkg" -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" >"$log" 2>&1
	rc=$?
	# A backstop for the engine's own deadline failures: a run that failed
	# with no saved input and no message but a bare "--- FAIL" or the
	# deadline race's "context deadline exceeded" (no target sets a
	# deadline of its own) says nothing about the code. It is shown and run once
	# more; a run that saved an input or printed anything else never is.
	if [ $rc -ne 0 ] && ! grep -q 'testdata/fuzz/' "$log" &&
		[ -z "$(grep -vE '^(fuzz: elapsed|--- FAIL: |FAIL|ok|PASS|exit status|[[:space:]]*context deadline exceeded$)' "$log")" ]; then
		echo "fuzz: $name: the engine failed at its deadline with no input; its log:"
		cat "$log"
		echo "fuzz: $name: running it once more"
		gofuzz "$pkg" -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" >"$log" 2>&1
		rc=$?
	fi
	secs=$(($(date +%s) - start))
	# The last progress line says how many inputs were tried.
	execs=$(grep -oE 'execs: [0-9]+' "$log" | tail -1 | awk '{print $2}')
	if [ $rc -eq 0 ]; then
		summary+=("$(printf '%-6s %-50s %-24s %8s execs %4ss' ok "$pkg" "$name" "${execs:-?}" "$secs")")
		continue
	fi
	failed+=("$pkg $name")
	summary+=("$(printf '%-6s %-50s %-24s %8s execs %4ss' FAIL "$pkg" "$name" "${execs:-?}" "$secs")")
	cat "$log"
	dir=$(go list -f '{{.Dir}}' "$pkg")
	dir=${dir#"$PWD"}
	dir=${dir#/}
	dir=${dir:-.}
	seeds=$(grep -oE 'testdata/fuzz/[^ ]+' "$log" | sort -u)
	if [ -n "$seeds" ]; then
		for s in $seeds; do
			echo "fuzz: $name failed; the input that broke it is saved as $dir/$s"
		done
		echo "fuzz: it is now a regression seed that plain 'go test $pkg' runs; commit it with the fix."
	else
		echo "fuzz: $name failed without saving an input (a build error or a failing seed above)."
	fi
done

echo
echo "fuzz: summary ($fuzztime per target)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: ${#failed[@]} of ${#targets[@]} targets FAILED: ${failed[*]}" >&2
	new=$(git status --porcelain --untracked-files=all -- '*testdata/fuzz/*' 2>/dev/null)
	if [ -n "$new" ]; then
		echo "fuzz: new regression seeds (commit them with the fix):" >&2
		echo "$new" >&2
	fi
	exit 1
fi
echo "fuzz: all ${#targets[@]} targets passed"
