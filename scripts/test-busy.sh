#!/usr/bin/env bash
# test-busy.sh (`make test-busy`) runs the reliability and end-to-end
# packages twice at the same time beside two CPU-bound loops: the front
# doors must hold on a busy machine too (a 5,000-connection burst through
# NGINX and through the router loses nothing), and the tests must wait
# longer there instead of failing. It prints each run's result and burst
# figures, and for a failed run its failures (the whole output stays in
# out/busy/). It stops everything it started (the loops, the test
# processes and the servers they run) on success, failure or Ctrl-C, and
# exits non-zero when a run failed.
#
# Settings: RUNS (copies at once, default 2), LOOPS (CPU-bound loops,
# default 2), GO (default go).
set -uo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
RUNS=${RUNS:-2}
LOOPS=${LOOPS:-2}
PKGS=(./internal/reliability/ ./internal/e2e/)
OUT=$PWD/out/busy

started=() # the processes this script started, by id

# descendants prints the ids of every process below the given ones, read
# from /proc (the servers a test starts sit in process groups of their own,
# so a group kill would miss them).
descendants() {
	local f s rest pid ppid
	declare -A kids=()
	for f in /proc/[0-9]*/stat; do
		{ s=$(<"$f"); } 2>/dev/null || continue
		pid=${s%% *}
		rest=${s##*) }
		ppid=${rest#* }
		ppid=${ppid%% *}
		kids[$ppid]+="$pid "
	done
	local queue=("$@") p
	while ((${#queue[@]})); do
		p=${queue[0]}
		queue=("${queue[@]:1}")
		for pid in ${kids[$p]:-}; do
			echo "$pid"
			queue+=("$pid")
		done
	done
}

# stop ends every process this script started and all below them: TERM
# first, then KILL for what is left a moment later.
stop() {
	((${#started[@]})) || return 0
	local all
	all=("${started[@]}" $(descendants "${started[@]}"))
	kill -TERM "${all[@]}" 2>/dev/null
	sleep 1
	all+=($(descendants "${all[@]}"))
	kill -KILL "${all[@]}" 2>/dev/null
	wait 2>/dev/null
	started=()
}
trap 'echo "test-busy: interrupted, stopping what it started" >&2; stop; exit 130' INT
trap 'stop; exit 143' TERM
trap stop EXIT

mkdir -p "$OUT"
rm -rf "$OUT"/*

echo "== building the packages and the binaries their tests run"
if ! "$GO" test -count=1 -run '^$' "${PKGS[@]}" >"$OUT/build.log" 2>&1; then
	cat "$OUT/build.log"
	exit 1
fi

echo "== $RUNS runs of ${PKGS[*]} at once, beside $LOOPS CPU-bound loops ($(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg))"
for _ in $(seq "$LOOPS"); do
	# The timeout ends a loop even if this script is killed outright.
	timeout 1800 sh -c 'while :; do :; done' &
	started+=($!)
done
declare -A run=()
t0=$(date +%s)
for i in $(seq "$RUNS"); do
	# In a session of its own, so that Ctrl-C reaches this script alone and
	# it stops the whole tree, not a test binary that would leave its
	# servers behind.
	LINESERVER_FIGURES=$OUT/figures-$i.txt LINESERVER_LOGS=$OUT/logs-$i \
		setsid "$GO" test -count=1 -timeout 15m "${PKGS[@]}" >"$OUT/run-$i.log" 2>&1 &
	run[$i]=$!
	started+=($!)
done
failed=0
declare -A status=()
for i in $(seq "$RUNS"); do
	wait "${run[$i]}"
	status[$i]=$?
	((status[$i] == 0)) || failed=$((failed + 1))
done
took=$(($(date +%s) - t0))
stop

for i in $(seq "$RUNS"); do
	if ((status[$i] == 0)); then
		echo "-- run $i: ok"
	else
		echo "-- run $i: FAILED (exit ${status[$i]}; whole output in $OUT/run-$i.log)"
	fi
	grep -h 'Burst' "$OUT/figures-$i.txt" 2>/dev/null | sed 's/; memory.*//; s/^/   /'
	if ((status[$i] != 0)); then
		# The failures, each with its test's summary first; at most 150
		# lines of them.
		awk '/^(--- FAIL|FAIL|panic:)/ { on = 1 } /^(--- PASS|ok |=== RUN)/ { on = 0 } on' "$OUT/run-$i.log" | head -150 | sed 's/^/   /'
	fi
done
echo "== $((RUNS - failed)) of $RUNS runs passed in ${took}s"
exit $((failed > 0))
