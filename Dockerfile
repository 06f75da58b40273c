# The images of lineserver, built from this folder:
#
#	docker build -t lineserver .                    # the shard function (the default, the last stage)
#	docker build -t lineserver-router --target router .
#	docker build -t lineserver-nginx --target nginx .
#	docker run --rm --read-only -p 8080:8080 lineserver   # serves testdata/sample.txt
#
# `docker build .` makes the shard function's image only: BuildKit (the
# builder since Docker 23) builds the stages the target needs, here build
# and lineserver. The legacy builder (DOCKER_BUILDKIT=0, Docker 20.10) runs
# every stage before the target, the NGINX one's apt-get included, and
# still tags the shard function's image.
#
# The NGINX image with a config of one's own (as the reference's compose
# file mounts into nginx:latest) takes two overrides: the entrypoint, which
# otherwise renders nginx.conf from a manifest, and the user, nobody
# (65534), who cannot write Debian's default pid and temporary paths:
#
#	docker run --rm -p 8080:8080 -v "$PWD/nginx.conf:/etc/nginx/nginx.conf:ro" \
#	    --user 0:0 --entrypoint nginx lineserver-nginx -g 'daemon off;'
#
# In a compose file: `user: "0:0"` and `entrypoint: ["nginx", "-g", "daemon off;"]`.
#
# Binaries are static (no cgo), stripped and built with -trimpath; the
# function and the router run on distroless/static as the nonroot user
# (65532), with nothing written to the root file system.

FROM golang:1.26 AS build
WORKDIR /src
# GOTOOLCHAIN=auto: build with at least the toolchain go.mod names (a patch
# release with security fixes), fetched through the module proxy when the
# image's Go is older.
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=auto
# The modules in a layer of their own: it is rebuilt only when go.mod or
# go.sum change, not on every change of the code.
COPY go.mod go.sum ./
RUN go version && go mod download && go mod verify
COPY . .
# The build cache is dropped in the same step: it would only make the
# layer larger (nothing reuses it without BuildKit's cache mounts).
RUN go build -trimpath -ldflags='-s -w' -o /out/ \
        ./cmd/lineserver ./cmd/router ./cmd/lines ./cmd/probe \
 && go clean -cache

# The Go router: give it the manifest at /etc/lineserver/manifest.json
# (ROUTER_MANIFEST) or --manifest FILE; it answers on $PORT.
FROM gcr.io/distroless/static-debian12:nonroot AS router
COPY --from=build /out/router /out/probe /usr/local/bin/
ENV PORT=8080 ROUTER_MANIFEST=/etc/lineserver/manifest.json
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
        CMD ["/usr/local/bin/probe", "/readyz"]
ENTRYPOINT ["/usr/local/bin/router"]

# NGINX in front of the shards, with the config that `lines nginx` renders
# when it starts from the manifest at /etc/lineserver/manifest.json
# (MANIFEST). It runs as nobody, with its config, pid and temporary files
# in /tmp/nginx, so the root file system may be read-only when /tmp is not.
# It is Debian's nginx-light, which Debian keeps patched, and the NGINX the
# tests run (the official image's 1.22 tag is no longer rebuilt).
FROM debian:bookworm-slim AS nginx
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light \
 && rm -rf /var/lib/apt/lists/* /var/log/nginx/* /etc/nginx/sites-enabled/* \
 && ln -sf /dev/stdout /var/log/nginx/access.log \
 && ln -sf /dev/stderr /var/log/nginx/error.log \
 && nginx -v
STOPSIGNAL SIGQUIT
COPY --from=build /out/lines /out/probe /usr/local/bin/
COPY scripts/docker-nginx-entrypoint.sh /usr/local/bin/lineserver-nginx
ENV MANIFEST=/etc/lineserver/manifest.json PORT=8080 NGINX_PREFIX=/tmp/nginx
USER 65534:65534
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
        CMD ["/usr/local/bin/probe", "/healthz"]
ENTRYPOINT ["/usr/local/bin/lineserver-nginx"]
CMD []

# The shard function through the functions framework. Without settings it
# serves the sample baked in below; a shard gets its own files and range
# from FILE_REPOSITORY_FILE_PATH, INDEX_FILE_PATH, INDEX_FIRST_LINE_NUMBER,
# INDEX_LAST_LINE_NUMBER and FILE_TOTAL_LINES.
FROM gcr.io/distroless/static-debian12:nonroot AS lineserver
COPY --from=build /out/lineserver /out/probe /usr/local/bin/
COPY testdata/sample.txt testdata/sample.txt_index.txt /srv/sample/
ENV FUNCTION_TARGET=Lines PORT=8080 \
    FILE_REPOSITORY_FILE_PATH=/srv/sample/sample.txt
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
        CMD ["/usr/local/bin/probe", "/readyz"]
ENTRYPOINT ["/usr/local/bin/lineserver"]
