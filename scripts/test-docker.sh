#!/usr/bin/env bash
# test-docker.sh builds the images from the Dockerfile and tests them for
# real (`make test-docker`):
#
#  1. one container of the shard function: it runs as nonroot with a
#     read-only root, turns healthy, and serves testdata/sample.txt byte for
#     byte; a bad setting stops it at once;
#  2. the Cloud Run services that `lines cloudrun` renders: read with the
#     Cloud SDK's own code as `gcloud run services replace` reads them (when
#     google-cloud-cli is installed; offline), and run with their
#     environment as Cloud Run would, from the image alone and with the
#     shards mounted where the bucket would be;
#  3. the three-shard composition that `lines compose` renders from `lines
#     shard` output of a generated file: every line through NGINX and through
#     the router; one shard stopped: its range fails fast while the others
#     answer; started again: its range recovers.
#
# It prints each figure it measures, bounds every wait, and removes the
# containers, networks, volumes and files it made (the images stay, under
# the Dockerfile's usual tags, as a cache for the next run). Missing base
# images are pulled first; only those the pull cannot get (no registry, as
# on our CI machines) are made by offline-base-images.sh as local
# stand-ins, so that stand-ins never shadow images a registry would give.
#
# Settings: LINES (lines of the generated file, default 20000), SHARDS
# (default 3), KEEP=1 leaves the composition running for a look,
# SKIP_BUILD=1 tests the images as they are.
set -euo pipefail
cd "$(dirname "$0")/.."

LINES=${LINES:-20000}
SHARDS=${SHARDS:-3}
IMAGE=lineserver ROUTER_IMAGE=lineserver-router NGINX_IMAGE=lineserver-nginx
RUN_ID=lstest-$$-$(date +%s)
started=$(date +%s.%N)
failures=0 passes=0

say() { printf '\n== %s\n' "$*"; }
figure() { printf '   %-60s %s\n' "$1" "$2"; }
ok() {
	printf '   ok   %s\n' "$*"
	passes=$((passes + 1))
}
fail() {
	printf '   FAIL %s\n' "$*"
	failures=$((failures + 1))
}
die() {
	printf 'test-docker: %s\n' "$*" >&2
	exit 1
}
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }

command -v docker >/dev/null || die "docker is missing"
command -v curl >/dev/null || die "curl is missing"
command -v jq >/dev/null || die "jq is missing (apt-get install jq)"
command -v python3 >/dev/null || die "python3 is missing"
command -v go >/dev/null || die "go is missing"
if docker compose version >/dev/null 2>&1; then
	compose_cmd=(docker compose)
elif command -v docker-compose >/dev/null; then
	compose_cmd=(docker-compose)
else
	die "neither docker compose nor docker-compose is installed"
fi

tmp=$(mktemp -d)
single=$RUN_ID-single
compose_file=""
cleanup() {
	local rc=$?
	if [[ ${KEEP:-0} == 1 && -n $compose_file ]]; then
		echo "KEEP=1: left running; remove with: ${compose_cmd[*]} -p $RUN_ID -f $compose_file down -v; rm -rf $tmp"
		return
	fi
	docker rm -f "$single" "$single-bad" "$single-run" "$single-gcs" >/dev/null 2>&1 || true
	if [[ -n $compose_file ]]; then
		timeout 120 "${compose_cmd[@]}" -p "$RUN_ID" -f "$compose_file" down -v --remove-orphans >/dev/null 2>&1 || true
	fi
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# status_time URL prints "STATUS SECONDS" of one GET, bounded to 10 s.
status_time() {
	curl -s -o /dev/null --max-time 20 -w '%{http_code} %{time_total}\n' "$1" || true
}

# wait_200 URL TIMEOUT waits until URL answers 200 and prints the seconds.
wait_200() {
	local url=$1 limit=$2 t0
	t0=$(date +%s.%N)
	while :; do
		if [[ $(curl -s -o /dev/null --max-time 2 -w '%{http_code}' "$url" || true) == 200 ]]; then
			elapsed "$t0"
			return 0
		fi
		if awk -v a="$t0" -v b="$(date +%s.%N)" -v l="$limit" 'BEGIN { exit !(b - a > l) }'; then
			return 1
		fi
		sleep 0.1
	done
}

# same_lines URL FIRST LAST FILE fetches lines FIRST..LAST from URL (curl
# globbing, one connection) and compares them byte for byte with FILE's.
same_lines() {
	local url=$1 first=$2 last=$3 file=$4
	cmp -s <(curl -sf --max-time 120 "$url/lines/[$first-$last]") <(sed -n "${first},${last}p" "$file")
}

say "base images"
base_images=(golang:1.26 gcr.io/distroless/static-debian12:nonroot debian:bookworm-slim)
missing=()
for image in "${base_images[@]}"; do
	docker image inspect "$image" >/dev/null 2>&1 || missing+=("$image")
done
t0=$(date +%s.%N)
if ((${#missing[@]})); then
	for image in "${missing[@]}"; do
		timeout 300 docker pull -q "$image" >/dev/null 2>&1 && echo "   pulled $image" || echo "   could not pull $image"
	done
	timeout 900 bash scripts/offline-base-images.sh "${base_images[@]}"
fi
figure "base images ready (${#missing[@]} were missing)" "$(elapsed "$t0") s"

say "build the images"
[[ ${SKIP_BUILD:-0} == 1 ]] && echo "   SKIP_BUILD=1: testing the images as they are"
for target in router nginx lineserver; do
	case $target in
	router) tag=$ROUTER_IMAGE ;;
	nginx) tag=$NGINX_IMAGE ;;
	lineserver) tag=$IMAGE ;;
	esac
	t0=$(date +%s.%N)
	if [[ ${SKIP_BUILD:-0} != 1 ]]; then
		DOCKER_BUILDKIT=0 timeout 1200 docker build -q --force-rm --target "$target" -t "$tag" . >"$tmp/build.log" 2>&1 ||
			{ cat "$tmp/build.log"; die "docker build --target $target failed"; }
	fi
	size=$(docker image inspect -f '{{.Size}}' "$tag")
	figure "docker build --target $target -t $tag" "$(elapsed "$t0") s, $(awk -v s="$size" 'BEGIN { printf "%.1f MB", s / 1e6 }')"
done

say "test data: \`lines shard\` of a generated file"
data=$tmp/shards
mkdir -p "$data"
go build -o "$tmp/lines" ./cmd/lines
awk -v n="$LINES" 'BEGIN {
	split("alpha beta γάμμα дельта epsilon 日本 🙂 zeta", w, " ")
	for (i = 1; i <= n; i++) {
		if (i % 97 == 0) { print ""; continue }
		s = "line " i ":"
		for (j = 0; j < i % 9; j++) s = s " " w[(i + j) % 8 + 1]
		if (i % 89 == 0) s = s "\r"
		print s
	}
}' >"$tmp/lines.txt"
figure "generated file" "$LINES lines, $(wc -c <"$tmp/lines.txt") bytes"
"$tmp/lines" shard "$tmp/lines.txt" --shards "$SHARDS" --out "$data" >/dev/null
chmod -R a+rX "$data"
figure "lines shard --shards $SHARDS" "$(jq -r '[.shards[] | "\(.name) \(.first)-\(.last)"] | join(", ")' "$data/manifest.json")"

say "one container: nonroot, read-only, the sample baked in"
docker run -d --name "$single" --read-only -p 127.0.0.1::8080 "$IMAGE" >/dev/null
url=http://$(docker port "$single" 8080/tcp | head -n1)
if t=$(wait_200 "$url/readyz" 30); then
	figure "ready after" "$t s"
else
	docker logs "$single" | tail -n 20
	die "the container did not answer /readyz within 30 s"
fi
user=$(docker inspect -f '{{.Config.User}}' "$single")
uids=$(docker top "$single" -eo pid,uid | awk 'NR > 1 { print $2 }' | sort -u | tr '\n' ' ')
if [[ $user == 65532* && $uids == "65532 " ]]; then
	ok "runs as nonroot: image user $user, process uid $uids"
else
	fail "runs as user '$user', process uids '$uids', want 65532"
fi
if [[ $(docker inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$single") == true ]]; then
	ok "root file system is read-only"
else
	fail "root file system is writable"
fi
total=$(wc -l <testdata/sample.txt)
if cmp -s <(curl -sf --max-time 30 "$url/lines/[1-$total]") testdata/sample.txt; then
	ok "lines 1..$total concatenated are testdata/sample.txt, byte for byte"
else
	fail "lines 1..$total differ from testdata/sample.txt"
fi
if same_lines "$url" 1 1 testdata/sample.txt; then ok "/lines/1 byte-exact"; else fail "/lines/1 differs"; fi
code=$(curl -s -o /dev/null -w '%{http_code}' "$url/lines/$((total + 1))")
if [[ $code == 413 ]]; then ok "/lines/$((total + 1)) is 413"; else fail "/lines/$((total + 1)) is $code, want 413"; fi
t0=$(date +%s.%N)
health=""
while [[ $health != healthy ]] && awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { exit !(b - a < 30) }'; do
	sleep 0.5
	health=$(docker inspect -f '{{.State.Health.Status}}' "$single")
done
if [[ $health == healthy ]]; then
	ok "HEALTHCHECK (probe /readyz) healthy, $(elapsed "$t0") s after the checks above"
else
	fail "health is '$health' after 30 s"
fi
t0=$(date +%s.%N)
docker run --name "$single-bad" -e FILE_REPOSITORY_FILE_PATH=/nonexistent "$IMAGE" >"$tmp/bad.log" 2>&1 &
bad_pid=$!
if timeout 20 bash -c "while kill -0 $bad_pid 2>/dev/null; do sleep 0.1; done"; then
	code=$(docker inspect -f '{{.State.ExitCode}}' "$single-bad")
	if [[ $code != 0 ]]; then
		ok "a bad setting stops it: exit $code after $(elapsed "$t0") s: $(head -c 120 "$tmp/bad.log" | tr '\n' ' ')"
	else
		fail "a bad setting exited 0"
	fi
else
	fail "a bad setting did not stop the container within 20 s"
fi
docker rm -f "$single" "$single-bad" >/dev/null
# compose.yaml runs this image as this container did; it publishes :8080 on
# every interface, so it is only read here, not started.
if timeout 60 "${compose_cmd[@]}" -f compose.yaml config -q; then
	ok "compose.yaml is valid for ${compose_cmd[*]}"
else
	fail "compose.yaml is refused by ${compose_cmd[*]}"
fi

say "Cloud Run services: read as gcloud reads them, run as Cloud Run runs them"
# run_service NAME FILE [docker args] runs the image with the environment of
# a rendered service and PORT=8080, as Cloud Run would, and prints its URL.
run_service() {
	local name=$1 file=$2
	shift 2
	python3 scripts/check-cloudrun-yaml.py --env "$file" >"$tmp/$name.env"
	docker run -d --name "$name" --read-only -e PORT=8080 --env-file "$tmp/$name.env" \
		-p 127.0.0.1::8080 "$@" "$IMAGE" >/dev/null
	echo "http://$(docker port "$name" 8080/tcp | head -n1)"
}
# expect URL PATH STATUS checks one answer's status.
expect() {
	local code
	code=$(curl -s -o /dev/null --max-time 10 -w '%{http_code}' "$1$2" || true)
	if [[ $code == "$3" ]]; then ok "$2: $code"; else fail "$2: $code, want $3"; fi
}
"$tmp/lines" cloudrun testdata/sample-manifest.json --image "$IMAGE" --data-dir /srv/sample --out "$tmp/run-sample"
"$tmp/lines" cloudrun "$data/manifest.json" --image "$IMAGE" --gcs-bucket lines-bucket --min-instances 1 --out "$tmp/run-bucket"
if python3 scripts/check-cloudrun-yaml.py "$tmp"/run-sample/*.yaml "$tmp"/run-bucket/*.yaml >"$tmp/check.log" 2>&1; then
	ok "gcloud's Cloud Run v1 Service message takes all $(grep -c ': shard-' "$tmp/check.log") rendered files"
	grep -m1 run-bucket "$tmp/check.log" | sed "s|^$tmp/||; s/^/        /"
else
	rc=$?
	if [[ $rc == 3 && -z ${CI:-} ]]; then
		echo "   skip the Cloud SDK (google-cloud-cli) is not installed: the services are not read as gcloud reads them"
	elif [[ $rc == 3 ]]; then
		fail "the Cloud SDK (google-cloud-cli) is not installed: in CI the services must be read as gcloud reads them"
	else
		cat "$tmp/check.log"
		fail "gcloud's Cloud Run v1 Service message refuses a rendered file"
	fi
fi
# The sample's shard-2, from the image alone (the sample is baked in).
url=$(run_service "$single-run" "$tmp/run-sample/shard-2.yaml")
if t=$(wait_200 "$url/readyz" 30); then
	ok "sample shard-2 with its rendered env (no volume) ready after $t s"
	expect "$url" /lines/150 200
	expect "$url" /lines/1 421
else
	fail "sample shard-2 with its rendered env did not start: $(docker logs "$single-run" 2>&1 | tail -n 3)"
fi
# A generated shard with the manifest's folder at /data, as the bucket
# would be mounted.
second=$(jq -r '.shards[1].name' "$data/manifest.json")
n=$(jq -r '.shards[1].first' "$data/manifest.json")
url=$(run_service "$single-gcs" "$tmp/run-bucket/$second.yaml" -v "$data:/data:ro")
if t=$(wait_200 "$url/readyz" 30); then
	ok "$second with its rendered env, the shards at /data as the bucket, ready after $t s"
	if same_lines "$url" "$n" "$n" "$tmp/lines.txt"; then ok "/lines/$n byte-exact"; else fail "/lines/$n differs"; fi
	expect "$url" /lines/1 421
else
	fail "$second with its rendered env did not start: $(docker logs "$single-gcs" 2>&1 | tail -n 3)"
fi
docker rm -f "$single-run" "$single-gcs" >/dev/null

say "three shards, NGINX and the router: docker compose (${compose_cmd[*]})"
compose_file=$data/compose.yaml
"$tmp/lines" compose "$data/manifest.json" --out "$compose_file" \
	--image "$IMAGE" --router-image "$ROUTER_IMAGE" --nginx-image "$NGINX_IMAGE" \
	--nginx-port 127.0.0.1: --router-port 127.0.0.1:
dc() { timeout "${DC_TIMEOUT:-120}" "${compose_cmd[@]}" -p "$RUN_ID" -f "$compose_file" "$@"; }
mapfile -t names < <(jq -r '.shards[].name' "$data/manifest.json")
t0=$(date +%s.%N)
dc up -d >"$tmp/up.log" 2>&1 || { cat "$tmp/up.log"; dc logs --tail 20 || true; die "compose up failed"; }
figure "compose up -d (${#names[@]} shards healthy, then nginx and router)" "$(elapsed "$t0") s"
declare -A front_url
front_url[nginx]=http://$(dc port nginx 8080 | tail -n1)
front_url[router]=http://$(dc port router 8080 | tail -n1)
for front in nginx router; do
	url=${front_url[$front]}
	t=$(wait_200 "$url/healthz" 30) || { dc logs --tail 30 "$front"; die "$front did not answer /healthz within 30 s"; }
	figure "$front answers /healthz after" "$t s"
done

# health_of SERVICE prints the health status of the service's container.
health_of() { docker inspect -f '{{.State.Health.Status}}' "$(dc ps -q "$1")"; }
t0=$(date +%s.%N)
for front in nginx router; do
	while [[ $(health_of "$front") != healthy ]] && awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { exit !(b - a < 30) }'; do
		sleep 0.5
	done
	if [[ $(health_of "$front") == healthy ]]; then
		ok "$front's health check (probe) is healthy"
	else
		fail "$front's health is $(health_of "$front") after 30 s"
	fi
done

for front in nginx router; do
	url=${front_url[$front]}
	t0=$(date +%s.%N)
	if same_lines "$url" 1 "$LINES" "$tmp/lines.txt"; then
		t=$(elapsed "$t0")
		ok "all $LINES lines through $front, byte-exact"
		figure "  $LINES GETs through $front" "$t s ($(awk -v n="$LINES" -v t="$t" 'BEGIN { printf "%.0f", n / t }') req/s, one connection)"
	else
		fail "lines through $front differ from the file"
	fi
	for i in "${!names[@]}"; do
		first=$(jq -r ".shards[$i].first" "$data/manifest.json")
		last=$(jq -r ".shards[$i].last" "$data/manifest.json")
		mid=$(((first + last) / 2))
		for n in "$first" "$mid" "$last"; do
			same_lines "$url" "$n" "$n" "$tmp/lines.txt" || fail "$front: line $n of ${names[$i]} differs"
		done
	done
	ok "$front: first, middle and last line of every shard byte-exact"
	[[ $(curl -s -o /dev/null -w '%{http_code}' "$url/lines/-1") == 200 ]] || fail "$front: /lines/-1 is not 200"
	[[ $(curl -s -o /dev/null -w '%{http_code}' "$url/lines/$((LINES + 1))") == 413 ]] || fail "$front: /lines/$((LINES + 1)) is not 413"
done

# A line of each shard, for the failure test.
probe_lines=()
for i in "${!names[@]}"; do
	first=$(jq -r ".shards[$i].first" "$data/manifest.json")
	last=$(jq -r ".shards[$i].last" "$data/manifest.json")
	probe_lines+=($(((first + last) / 2)))
done
victim_i=$((${#names[@]} / 2))
victim=${names[$victim_i]}
victim_id=$(dc ps -q "$victim")
victim_ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$victim_id")

say "stop $victim: its range fails fast, the others answer"
# A stopped container's address has no host left to refuse a connection,
# so NGINX answers when its proxy_connect_timeout (10 s, nginx/nginx.conf.tmpl;
# docs/nginx.md says why it is long) runs out: within 12.5 s. The router
# already knows from its health checks: within 2.5 s.
t0=$(date +%s.%N)
timeout 30 docker stop -t 10 "$victim_id" >/dev/null
figure "docker stop $victim" "$(elapsed "$t0") s"
for front in nginx router; do
	url=${front_url[$front]}
	for i in "${!names[@]}"; do
		n=${probe_lines[$i]}
		read -r code secs <<<"$(status_time "$url/lines/$n")"
		if ((i == victim_i)); then
			limit=2.5
			[[ $front == nginx ]] && limit=12.5
			if [[ $code =~ ^50[234]$ ]] && awk -v s="$secs" -v l="$limit" 'BEGIN { exit !(s < l) }'; then
				ok "$front /lines/$n (${names[$i]}, stopped): $code in $secs s"
			else
				fail "$front /lines/$n of the stopped ${names[$i]}: $code in $secs s, want 502/503/504 within $limit s"
			fi
			# Again, now that the front door knows.
			read -r code secs <<<"$(status_time "$url/lines/$n")"
			figure "$front /lines/$n (${names[$i]}, stopped), again" "$code in $secs s"
		elif [[ $code == 200 ]]; then
			ok "$front /lines/$n (${names[$i]}): $code in $secs s"
		else
			fail "$front /lines/$n of the running ${names[$i]}: $code in $secs s"
		fi
	done
done

say "start $victim again: its range recovers"
t0=$(date +%s.%N)
timeout 30 docker start "$victim_id" >/dev/null
new_ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$victim_id")
if [[ $new_ip == "$victim_ip" ]]; then
	figure "$victim's address" "kept, $victim_ip"
else
	figure "$victim's address" "changed, $victim_ip -> $new_ip"
fi
n=${probe_lines[$victim_i]}
for front in nginx router; do
	url=${front_url[$front]}
	if t=$(wait_200 "$url/lines/$n" 30); then
		ok "$front serves /lines/$n again, $(elapsed "$t0") s after docker start"
		same_lines "$url" "$n" "$n" "$tmp/lines.txt" || fail "$front: line $n differs after recovery"
	else
		fail "$front: /lines/$n did not recover within 30 s"
	fi
done

say "compose down"
t0=$(date +%s.%N)
dc down -v --remove-orphans >/dev/null 2>&1 || fail "compose down failed"
left=$(docker ps -aq --filter "label=com.docker.compose.project=$RUN_ID" | wc -l)
if ((left == 0)); then ok "compose down -v in $(elapsed "$t0") s: nothing left"; else fail "$left containers left"; fi
compose_file=""

say "done in $(elapsed "$started") s"
echo "test-docker: $passes passed, $failures failed"
((failures == 0))
