#!/usr/bin/env bash
# The router against NGINX and against the two smallest routers a library
# gives, side by side before one shard, in one run (issue 13 asks for each
# candidate's figures):
#   nginx     the config `lines nginx` renders;
#   router    this tree's router (fasthttp, with its health checks, retries,
#             timeouts, metrics and client watch);
#   fasthttp  a 20-line proxy on fasthttp's Server and HostClient, no options;
#   hertz     a 25-line proxy on CloudWeGo Hertz's server and client, which
#             run on its own netpoll event loop, not a goroutine per
#             connection;
#   net/http  a 10-line proxy on net/http and httputil.ReverseProxy.
# The small proxies are written below. fasthttp's and net/http's are built
# against this module's go.mod, so they use the same fasthttp as the router;
# Hertz's in a module of its own (HERTZ_VERSION), so that go.mod does not
# require a library the product does not use. They have none of the
# router's duties; they show what each library costs on its own.
#
#   scripts/bench-router-candidates.sh               # report to docs/bench/DATE-router-candidates.md
#   DURATION=10s ROUNDS=3 CONNS=1000 REPORT=/tmp/r.md scripts/bench-router-candidates.sh
#
# Data: the 1 GB file of `lines bench` in BENCH_DIR (default
# /tmp/lines-bench), made by a one-second `lines bench` run if missing.
# Needs go, nginx, wrk, curl, python3. All traffic goes to 127.0.0.1; every
# process it starts is stopped on exit. Each round runs every target once, in
# turn, so that a busy machine slows them alike. CPU per request is the
# front door's own CPU time (from /proc, shard and wrk apart) over the
# requests wrk counted.
set -euo pipefail

cd "$(dirname "$0")/.."
duration=${DURATION:-10s}
rounds=${ROUNDS:-3}
conns=${CONNS:-1000}
bench_dir=${BENCH_DIR:-/tmp/lines-bench}
report=${REPORT:-docs/bench/$(date -u +%Y-%m-%d)-router-candidates.md}

for c in go nginx wrk curl python3; do
	command -v "$c" >/dev/null || { echo "bench-router-candidates: $c is not installed" >&2; exit 2; }
done

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

echo "== building"
mkdir -p "$work/bin" "$work/fasthttp" "$work/hertz" "$work/nethttp" "$work/nginx/logs"
go build -o "$work/bin/" ./cmd/lines ./cmd/lineserver ./cmd/router
cat >"$work/fasthttp/main.go" <<'EOF'
package main

import (
	"log"
	"os"

	"github.com/valyala/fasthttp"
)

func main() {
	hc := &fasthttp.HostClient{Addr: os.Args[2], MaxConns: 4096}
	log.Fatal(fasthttp.ListenAndServe(os.Args[1], func(ctx *fasthttp.RequestCtx) {
		ctx.Request.Header.Del("Connection")
		if err := hc.Do(&ctx.Request, &ctx.Response); err != nil {
			ctx.Error("bad gateway", fasthttp.StatusBadGateway)
		}
		ctx.Response.Header.Del("Connection")
	}))
}
EOF
cat >"$work/nethttp/main.go" <<'EOF'
package main

import (
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
)

func main() {
	p := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: os.Args[2]})
	p.Transport = &http.Transport{MaxIdleConnsPerHost: 4096}
	log.Fatal(http.ListenAndServe(os.Args[1], p))
}
EOF
cat >"$work/hertz/main.go" <<'EOF'
package main

import (
	"context"
	"os"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/app/client"
	"github.com/cloudwego/hertz/pkg/app/server"
	"github.com/cloudwego/hertz/pkg/common/hlog"
)

func main() {
	hlog.SetLevel(hlog.LevelError)
	cli, err := client.NewClient(client.WithMaxConnsPerHost(4096))
	if err != nil {
		panic(err)
	}
	h := server.New(server.WithHostPorts(os.Args[1]), server.WithDisablePrintRoute(true))
	h.NoRoute(func(ctx context.Context, c *app.RequestContext) {
		c.Request.Header.Del("Connection")
		c.Request.SetHost(os.Args[2])
		if err := cli.Do(ctx, &c.Request, &c.Response); err != nil {
			c.String(502, "bad gateway")
		}
		c.Response.Header.Del("Connection")
	})
	h.Spin()
}
EOF
printf 'module hertzproxy\n\ngo 1.26\n' >"$work/hertz/go.mod"
(cd "$work/hertz" && go get "github.com/cloudwego/hertz@${HERTZ_VERSION:-v0.10.4}" && go mod tidy && go build -o "$work/bin/hertz-proxy" .)
go build -o "$work/bin/fasthttp-proxy" "$work/fasthttp/main.go"
go build -o "$work/bin/nethttp-proxy" "$work/nethttp/main.go"

data=$bench_dir/lines-1GB-seed1.txt
if [ ! -f "$data" ] || [ ! -f "${data}_index.txt" ]; then
	echo "== making the 1 GB data file with lines bench"
	"$work/bin/lines" bench --bin "$work/bin" --dir "$bench_dir" --targets shard --rounds 1 --duration 1s \
		--warmup 0 --cold-starts 0 --rate-duration 0 >/dev/null
fi
total=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['lines'])" "$data.json")
cat "$data" "${data}_index.txt" >/dev/null # into the page cache

echo "== starting the shard and the front doors"
shard_port=$(free_port)
FUNCTION_TARGET=Lines FILE_REPOSITORY_FILE_PATH=$data INDEX_FILE_PATH=${data}_index.txt \
	INDEX_FIRST_LINE_NUMBER=1 INDEX_LAST_LINE_NUMBER=$total FILE_TOTAL_LINES=$total \
	PORT=$shard_port LOG_LEVEL=warn "$work/bin/lineserver" >"$work/shard.log" 2>&1 &
pids+=($!)
shard_pid=$!
wait_http "http://127.0.0.1:$shard_port/readyz"
cat >"$work/manifest.json" <<EOF
{"total_lines": $total, "shards": [{"name": "shard-1", "first": 1, "last": $total, "data": "$data", "index": "${data}_index.txt", "urls": ["http://127.0.0.1:$shard_port"]}]}
EOF

declare -A port pidlist
port[nginx]=$(free_port)
"$work/bin/lines" nginx "$work/manifest.json" --listen "127.0.0.1:${port[nginx]}" |
	sed 's|access_log /dev/stdout|access_log off; #|' >"$work/nginx/nginx.conf"
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -e stderr -g "daemon off; pid $work/nginx/nginx.pid;" 2>"$work/nginx.log" &
pids+=($!)
nginx_pid=$!
wait_http "http://127.0.0.1:${port[nginx]}/lines/1"
pidlist[nginx]="$nginx_pid $(pgrep -P "$nginx_pid" | tr '\n' ' ')"

port[router]=$(free_port)
"$work/bin/router" --manifest "$work/manifest.json" --listen "127.0.0.1:${port[router]}" --log-level warn >"$work/router.log" 2>&1 &
pids+=($!)
pidlist[router]=$!
for t in fasthttp hertz nethttp; do
	port[$t]=$(free_port)
	"$work/bin/$t-proxy" "127.0.0.1:${port[$t]}" "127.0.0.1:$shard_port" >"$work/$t.log" 2>&1 &
	pids+=($!)
	pidlist[$t]=$!
done
for t in router fasthttp hertz nethttp; do wait_http "http://127.0.0.1:${port[$t]}/lines/1"; done

# Random lines, from a pool built before the turn, as lines bench asks them.
cat >"$work/lines.lua" <<EOF
local requests, i, threads = {}, 0, 0
function setup(thread) threads = threads + 1; thread:set("id", threads) end
function init(args)
  math.randomseed(1000 + 7919 * (id or 0))
  local tail = " HTTP/1.1\r\nHost: " .. wrk.headers["Host"] .. "\r\n\r\n"
  for k = 1, 100000 do requests[k] = "GET /lines/" .. math.random(1, $total) .. tail end
end
function request() i = i % 100000 + 1; return requests[i] end
EOF

tick=$(getconf CLK_TCK)
cpu_of() { local s=0; for p in $1; do s=$((s + $(awk '{print $14+$15}' "/proc/$p/stat"))); done; echo "$s"; }
targets=(nginx router fasthttp hertz nethttp)
results=$work/results.tsv
for r in $(seq "$rounds"); do
	for t in "${targets[@]}"; do
		c0=$(cpu_of "${pidlist[$t]}")
		s0=$(cpu_of "$shard_pid")
		out=$(wrk -t2 -c"$conns" -d"$duration" -s "$work/lines.lua" "http://127.0.0.1:${port[$t]}")
		c1=$(cpu_of "${pidlist[$t]}")
		s1=$(cpu_of "$shard_pid")
		reqs=$(awk '/requests in/{print $1}' <<<"$out")
		rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
		errs=$(awk '/Non-2xx|Socket errors/{printf "%s ", $0}' <<<"$out")
		door=$(python3 -c "print(f'{($c1-$c0)/$tick*1e6/$reqs:.1f}')")
		shard=$(python3 -c "print(f'{($s1-$s0)/$tick*1e6/$reqs:.1f}')")
		printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$t" "$rps" "$door" "$shard" "${errs:-none}" >>"$results"
		echo "round $r $t: $rps req/s, front door $door µs/req, shard $shard µs/req ${errs}"
	done
done

python3 - "$results" "$report" "$duration" "$rounds" "$conns" "$(git rev-parse --short HEAD)" "$(uptime | sed 's/.*load average: //')" <<'EOF'
import statistics, sys, datetime
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
report, duration, rounds, conns, commit, load = sys.argv[2:]
names = {"nginx": "NGINX, the generated config", "router": "the router (fasthttp)",
         "fasthttp": "20-line fasthttp proxy", "hertz": "25-line Hertz proxy (netpoll)",
         "nethttp": "10-line net/http ReverseProxy"}
order = ["nginx", "router", "fasthttp", "hertz", "nethttp"]
by = {t: [r for r in rows if r[1] == t] for t in order}
med = lambda t, i: statistics.median(float(r[i]) for r in by[t])
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
with open(report, "w") as f:
    f.write(f"### Router candidates before one shard, {now}\n\n")
    f.write(f"- Command: `scripts/bench-router-candidates.sh` (DURATION={duration} ROUNDS={rounds} CONNS={conns})\n")
    f.write(f"- Built from: commit {commit}; load average at the end: {load}\n")
    f.write(f"- Load: wrk, {conns} connections, 2 threads, random lines of the 1 GB file of `lines bench`, {rounds} rounds of {duration} turns, targets in turn within a round\n")
    f.write("- CPU per request: the front door's own processes (NGINX's master and workers), from /proc; the shard's apart; wrk on the same two cores\n\n")
    f.write("| front door | req/s (median) | vs NGINX | front door CPU/req (median) | vs NGINX | shard CPU/req | errors |\n")
    f.write("| --- | ---: | ---: | ---: | ---: | ---: | --- |\n")
    for t in order:
        errs = "; ".join(sorted({r[5] for r in by[t]}))
        f.write(f"| {names[t]} | {med(t,2):,.0f} | {med(t,2)/med('nginx',2):.2f} | {med(t,3):.1f} µs | {med(t,3)/med('nginx',3):.2f} | {med(t,4):.1f} µs | {errs} |\n")
    f.write("\n#### Every turn\n\n| round | front door | req/s | front door CPU/req | shard CPU/req |\n| ---: | --- | ---: | ---: | ---: |\n")
    for r in rows:
        f.write(f"| {r[0]} | {names[r[1]]} | {float(r[2]):,.0f} | {r[3]} µs | {r[4]} µs |\n")
print("wrote", report)
EOF
