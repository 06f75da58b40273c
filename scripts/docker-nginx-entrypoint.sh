#!/bin/sh
# The entrypoint of the Dockerfile's nginx target: renders nginx.conf from
# the shard manifest at $MANIFEST with `lines nginx`, listening on $PORT,
# and runs NGINX in the foreground with its prefix (config, pid and
# temporary folders) in $NGINX_PREFIX, so the root file system may be
# read-only when /tmp is not. Arguments are passed on to nginx.
set -eu
prefix=${NGINX_PREFIX:-/tmp/nginx}
mkdir -p "$prefix"
lines nginx "${MANIFEST:-/etc/lineserver/manifest.json}" --listen ":${PORT:-8080}" >"$prefix/nginx.conf"
exec nginx -p "$prefix" -c nginx.conf -e stderr -g "daemon off; pid $prefix/nginx.pid;" "$@"
