#!/usr/bin/env bash
# NGINX in front of 3 shards and in front of 1,000, side by side in one run:
# every shard in both manifests points at the same whole-file shard, so only
# the routing differs. Runs the config this tree renders ("new") and, if it
# can build it, the one an older commit renders ("old", OLD_REF, default
# main), and writes a Markdown report.
#
#   scripts/bench-nginx-shards.sh                     # report to docs/bench/DATE-nginx-shards.md
#   LINES=2000000 DURATION=10s ROUNDS=3 CONNS=1000 scripts/bench-nginx-shards.sh
#   OLD_REF= scripts/bench-nginx-shards.sh            # the new config only
#   REPORT=/tmp/r.md scripts/bench-nginx-shards.sh
#
# Needs go, nginx, wrk. All traffic goes to 127.0.0.1; every process it
# starts is stopped on exit; its files are in a temporary folder it removes.
# Each round runs every configuration once, in turn, so that a busy machine
# slows them alike; the report gives each round's requests per second, the
# median, the ratio of 1,000 shards to 3, and NGINX's CPU time per request.
set -euo pipefail

cd "$(dirname "$0")/.."
lines_n=${LINES:-2000000}
duration=${DURATION:-10s}
rounds=${ROUNDS:-3}
conns=${CONNS:-1000}
old_ref=${OLD_REF-main}
report=${REPORT:-docs/bench/$(date -u +%Y-%m-%d)-nginx-shards.md}

for c in go nginx wrk; do
	command -v "$c" >/dev/null || { echo "bench-nginx-shards: $c is not installed" >&2; exit 2; }
done

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

echo "== building"
mkdir -p "$work/new" "$work/old"
go build -o "$work/new/" ./cmd/lines ./cmd/lineserver
versions=(new)
if [ -n "$old_ref" ]; then
	if git archive "$old_ref" | tar -x -C "$work/old" && (cd "$work/old" && go build -o "$work/old/lines" ./cmd/lines); then
		versions=(old new)
	else
		echo "bench-nginx-shards: cannot build lines at $old_ref; measuring the new config only" >&2
	fi
fi

echo "== a file of $lines_n lines and its index"
awk -v n="$lines_n" 'BEGIN { srand(1); for (i = 1; i <= n; i++) { printf "line %d", i; for (j = int(rand() * 12); j > 0; j--) printf " word%d", j; printf "\n" } }' >"$work/data.txt"
"$work/new/lines" index "$work/data.txt" >/dev/null

shard_port=$(free_port)
FILE_REPOSITORY_FILE_PATH="$work/data.txt" INDEX_FILE_PATH="$work/data.txt_index.txt" PORT=$shard_port \
	"$work/new/lineserver" >"$work/shard.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$shard_port/readyz"

# manifest K: K shards of equal size, every one at the whole-file shard.
manifest() {
	local k=$1 out=$2
	awk -v k="$k" -v total="$lines_n" -v url="http://127.0.0.1:$shard_port" 'BEGIN {
		printf "{\"total_lines\": %d, \"shards\": [\n", total
		first = 1
		for (i = 1; i <= k; i++) {
			last = int(total * i / k)
			printf "  {\"name\": \"shard-%d\", \"first\": %d, \"last\": %d, \"data\": \"data.txt\", \"urls\": [\"%s\"]}%s\n", i, first, last, url, (i < k ? "," : "")
			first = last + 1
		}
		print "]}"
	}' >"$out"
}
manifest 3 "$work/m3.json"
manifest 1000 "$work/m1000.json"

cat >"$work/random.lua" <<EOF
math.randomseed(os.time())
request = function()
	return wrk.format("GET", "/lines/" .. math.random(1, $lines_n))
end
EOF

# cpu_of PID: user+system clock ticks of the process and its children
# that are alive (NGINX's workers).
cpu_of() {
	local total=0 p
	for p in $1 $(pgrep -P "$1" || true); do
		[ -r "/proc/$p/stat" ] || continue
		total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
	done
	echo "$total"
}
hz=$(getconf CLK_TCK)

declare -A port pidof sizeof
for v in "${versions[@]}"; do
	for k in 3 1000; do
		dir="$work/nginx-$v-$k"
		mkdir -p "$dir"
		p=$(free_port)
		"$work/$v/lines" nginx "$work/m$k.json" --listen "127.0.0.1:$p" >"$dir/nginx.conf"
		sizeof[$v-$k]=$(($(wc -c <"$dir/nginx.conf") / 1024))
		nginx -p "$dir" -c nginx.conf -e stderr -g 'daemon off; pid nginx.pid;' >/dev/null 2>"$dir/error.log" &
		pidof[$v-$k]=$!
		pids+=($!)
		port[$v-$k]=$p
		wait_http "http://127.0.0.1:$p/healthz"
	done
done

declare -A rps cpu
configs=()
for v in "${versions[@]}"; do configs+=("$v-3" "$v-1000"); done
for r in $(seq "$rounds"); do
	for c in "${configs[@]}"; do
		before=$(cpu_of "${pidof[$c]}")
		out=$(wrk -t 2 -c "$conns" -d "$duration" -s "$work/random.lua" "http://127.0.0.1:${port[$c]}/" 2>&1)
		after=$(cpu_of "${pidof[$c]}")
		req=$(echo "$out" | awk '/requests in/ {print $1}')
		rs=$(echo "$out" | awk '/Requests\/sec/ {printf "%d", $2}')
		bad=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
		if [ -n "$bad" ]; then
			echo "bench-nginx-shards: $c answered $bad non-2xx responses" >&2
			echo "$out" >&2
			exit 1
		fi
		us=$(awk -v t=$((after - before)) -v hz="$hz" -v n="$req" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
		rps[$c]+="$rs "
		cpu[$c]+="$us "
		echo "round $r $c: $rs req/s, $us µs NGINX CPU per request"
	done
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR] = $1} END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }

mkdir -p "$(dirname "$report")"
{
	echo "# NGINX routing: 1,000 shards against 3"
	echo
	echo "Written by \`scripts/bench-nginx-shards.sh\` on $(date -u +%Y-%m-%d), $(nproc) cores ($(uname -m)), $(nginx -v 2>&1 | sed 's/.*: //')."
	echo "A file of $lines_n lines; one whole-file shard (\`lineserver\`) on 127.0.0.1; NGINX in front of"
	echo "it with a manifest of 3 equal shards and one of 1,000, every shard at that same shard, so only the"
	echo "routing differs. wrk: $conns connections, 2 threads, $duration a run, random lines; $rounds rounds, each"
	echo "running every configuration once in turn. \"old\" is the config \`lines nginx\` of $old_ref renders,"
	echo "\"new\" this tree's ($(git rev-parse --short HEAD)$(git diff --quiet HEAD -- nginx || echo ', with changes'))."
	echo
	echo "The machine is shared and busy: compare the figures of one run with each other, not with other runs."
	echo "NGINX's CPU is its master's and workers' user and system time over the run, per request."
	echo
	echo "| config | shards | config size | req/s by round | median req/s | NGINX CPU µs/request (median) |"
	echo "| --- | ---: | ---: | --- | ---: | ---: |"
	for c in "${configs[@]}"; do
		echo "| ${c%-*} | ${c#*-} | ${sizeof[$c]} KB | ${rps[$c]% } | $(echo "${rps[$c]}" | median) | $(echo "${cpu[$c]}" | median) |"
	done
	echo
	echo "| config | 1,000 shards / 3 shards (median req/s) |"
	echo "| --- | ---: |"
	for v in "${versions[@]}"; do
		a=$(echo "${rps[$v-1000]}" | median)
		b=$(echo "${rps[$v-3]}" | median)
		echo "| $v | $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2fx", a / b }') |"
	done
	if [ ${#versions[@]} -eq 2 ]; then
		echo
		echo "| shards | new / old (median req/s) |"
		echo "| ---: | ---: |"
		for k in 3 1000; do
			a=$(echo "${rps[new-$k]}" | median)
			b=$(echo "${rps[old-$k]}" | median)
			echo "| $k | $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2fx", a / b }') |"
		done
	fi
} >"$report"
echo "== report: $report"
cat "$report"
