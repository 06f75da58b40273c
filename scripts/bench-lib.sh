# Shared by the scripts/bench-*.sh scripts: a work folder removed on exit,
# the processes started (append their pids to pids) stopped on exit, a free
# port on 127.0.0.1, and a wait for a URL to answer. Source it after cd to
# the repository's root.

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_http URL: waits up to 30 s for URL to answer 2xx, or exits.
wait_http() {
	for _ in $(seq 300); do
		curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "$(basename "$0" .sh): $1 did not answer" >&2
	exit 1
}
