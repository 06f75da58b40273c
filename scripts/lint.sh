#!/usr/bin/env bash
# Static checks of the module: gofmt, go vet, staticcheck and govulncheck.
# Every step runs; the script exits 1 if any failed and lists which.
#
#   scripts/lint.sh
#   VULNDB_VERSION=latest scripts/lint.sh   # the newest vulnerability data
#
# staticcheck and govulncheck come from the Go module proxy at pinned
# versions through `go run tool@version`, so go.mod does not list them.
#
# govulncheck cannot reach its database's web site from here. It reads a
# local copy instead, built from the module golang.org/x/vulndb (also on the
# module proxy): its data/osv folder holds every report as an OSV file, and
# its own command indexdb turns that folder into the database layout that
# `govulncheck -db file://DIR` reads. The copy is built once per
# VULNDB_VERSION and kept under LINT_CACHE. If it cannot be had, the script
# says so and that step alone does not fail the run.
#
# A vulnerability in a required module fails the run (go get the version
# govulncheck names as "Fixed in"). One in the standard library is fixed by
# building with the Go release it names (go.mod's toolchain line and
# GOTOOLCHAIN): a warning, or a failure with GOVULNCHECK_STDLIB=fail.
set -uo pipefail

cd "$(dirname "$0")/.."
STATICCHECK_VERSION=${STATICCHECK_VERSION:-v0.8.2}
GOVULNCHECK_VERSION=${GOVULNCHECK_VERSION:-v1.9.0}
# The vulnerability data of 2026-11-05; bump it (or set latest) to see
# newer reports.
VULNDB_VERSION=${VULNDB_VERSION:-v0.0.0-20261105234957-e22db6528018}
LINT_CACHE=${LINT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lineserver-lint}
# GOVULNCHECK_STDLIB=fail fails the run on reachable vulnerabilities of the
# Go standard library too; by default they are a warning, as their fix is
# the toolchain CI builds with, not the code.
GOVULNCHECK_STDLIB=${GOVULNCHECK_STDLIB:-warn}

failed=()
skipped=()
warned=()

step() { echo; echo "=== lint: $1"; }

step gofmt
unformatted=$(find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*' -not -path './_*' -print0 |
	xargs -0 gofmt -l)
if [ -n "$unformatted" ]; then
	echo "not gofmt'ed (run gofmt -w on them):"
	echo "$unformatted"
	failed+=(gofmt)
else
	echo ok
fi

step "go vet"
if go vet ./...; then echo ok; else failed+=("go vet"); fi

step "staticcheck $STATICCHECK_VERSION"
if go run "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION" ./...; then
	echo ok
else
	failed+=(staticcheck)
fi

# vulndb_dir prints the folder of the local vulnerability database,
# building it first if needed, or says why it cannot and returns 1.
vulndb_dir() {
	local info src version out tmp
	info=$(cd / && go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" 2>&1) || {
		echo "cannot download golang.org/x/vulndb@$VULNDB_VERSION from the module proxy: $info" >&2
		return 1
	}
	src=$(echo "$info" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	version=$(echo "$info" | sed -n 's/^[[:space:]]*"Version": "\(.*\)",$/\1/p')
	if [ ! -d "$src/data/osv" ]; then
		echo "golang.org/x/vulndb@$version has no data/osv folder: the module's layout changed" >&2
		return 1
	fi
	out="$LINT_CACHE/vulndb-$version"
	if [ ! -f "$out/index/db.json" ]; then
		echo "building the vulnerability database of golang.org/x/vulndb@$version in $out (once)" >&2
		mkdir -p "$LINT_CACHE" || return 1
		tmp=$(mktemp -d "$LINT_CACHE/tmp.XXXXXX") || return 1
		if ! (cd / && go run "golang.org/x/vulndb/cmd/indexdb@$version" -vulns "$src/data/osv" -out "$tmp/db") >&2; then
			echo "golang.org/x/vulndb/cmd/indexdb@$version could not build the database" >&2
			rm -rf "$tmp"
			return 1
		fi
		rm -rf "$out"
		mv "$tmp/db" "$out" && rmdir "$tmp"
	fi
	echo "$out"
}

step "govulncheck $GOVULNCHECK_VERSION"
if db=$(vulndb_dir); then
	echo "database: $db ($(ls "$db/ID" | grep -c '\.json$') reports)"
	# Installed rather than run with go run, which turns its exit status 3
	# (vulnerabilities found) into 1.
	bin="$LINT_CACHE/bin/govulncheck-$GOVULNCHECK_VERSION"
	GOBIN=$bin go install "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION"
	out=$(mktemp)
	"$bin/govulncheck" -db "file://$db" ./... | tee "$out"
	rc=${PIPESTATUS[0]}
	# Its summary says where the reachable vulnerabilities are: "from N
	# module(s)", "from the Go standard library", or both.
	modules=$(grep -cE 'affected by [0-9]+ vulnerabilit(y|ies) from [0-9]+ modules?' "$out")
	rm -f "$out"
	case $rc in
	0) echo ok ;;
	3)
		if [ "$modules" -gt 0 ]; then
			echo "govulncheck: the code reaches vulnerabilities in modules it requires: go get the 'Fixed in' versions."
			failed+=(govulncheck)
		elif [ "$GOVULNCHECK_STDLIB" = fail ]; then
			echo "govulncheck: the code reaches vulnerabilities of the Go standard library $(go env GOVERSION)."
			failed+=(govulncheck)
		else
			echo "lint: WARNING: the code reaches vulnerabilities of the Go standard library $(go env GOVERSION) (above)."
			echo "lint: WARNING: build with the Go release named 'Fixed in' (go.mod's toolchain line, GOTOOLCHAIN);"
			echo "lint: WARNING: with GOVULNCHECK_STDLIB=fail this fails the run."
			warned+=(govulncheck)
		fi
		;;
	*) failed+=("govulncheck (did not run)") ;;
	esac
elif [ -n "${CI:-}" ]; then
	echo "lint: govulncheck could not run: no local vulnerability database (the reason is above)."
	failed+=("govulncheck (no vulnerability database in CI)")
else
	echo "lint: govulncheck SKIPPED: no local vulnerability database (the reason is above)."
	echo "lint: this step alone does not fail the run outside CI; nothing was checked for known vulnerabilities."
	skipped+=(govulncheck)
fi

echo
if [ ${#warned[@]} -gt 0 ]; then
	echo "lint: warnings: ${warned[*]}"
fi
if [ ${#skipped[@]} -gt 0 ]; then
	echo "lint: skipped: ${skipped[*]}"
fi
if [ ${#failed[@]} -gt 0 ]; then
	echo "lint: FAILED: ${failed[*]}" >&2
	exit 1
fi
echo "lint: all checks passed"
