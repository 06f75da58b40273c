#!/usr/bin/env bash
# offline-base-images.sh makes local stand-ins for the base images that the
# Dockerfile names in its FROM lines, for machines whose Docker engine cannot
# pull from a registry. Each image is made only when it is missing, so the
# script is quick when they exist, and an engine that can pull never needs it:
#
#   debian:bookworm                          debootstrap --variant=minbase, docker import
#   golang:1.26                              debian:bookworm + this host's Go + CA certificates
#   gcr.io/distroless/static-debian12:nonroot a minimal root: passwd with nonroot (65532), CA certificates
#   debian:bookworm-slim                     debian:bookworm, tagged (minbase is as slim)
#
# The debootstrap root is cached as a tarball under ${XDG_CACHE_HOME:-~/.cache}
# so that a rerun after `docker image rm` takes seconds. The host's CA bundle
# goes into every image, as TLS to the Go module proxy may pass a local CA.
#
# Needs: root, docker, debootstrap (apt-get install debootstrap), Go at
# $GOROOT or /usr/local/go. Settings (environment):
#   DEBIAN_MIRROR  the mirror debootstrap uses; default: the first
#                  deb.debian.org-style URI in apt's sources, else
#                  http://deb.debian.org/debian
#   GO_ROOT        the Go tree for golang:1.26; default: `go env GOROOT`
set -euo pipefail

GO_IMAGE=golang:1.26
STATIC_IMAGE=gcr.io/distroless/static-debian12:nonroot
SLIM_IMAGE=debian:bookworm-slim
DEBIAN_IMAGE=debian:bookworm
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
CACHE_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/lineserver-offline-images

log() { printf 'offline-base-images: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
have_image() { docker image inspect "$1" >/dev/null 2>&1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# debian_mirror prints the Debian mirror that apt already uses here, so that
# debootstrap goes the same way apt does.
debian_mirror() {
	if [[ -n ${DEBIAN_MIRROR:-} ]]; then
		echo "$DEBIAN_MIRROR"
		return
	fi
	local uri
	uri=$(grep -hoE '(URIs:|^deb)[[:space:]]+(\[[^]]*\][[:space:]]+)?https?://[^[:space:]]+/debian/?([[:space:]]|$)' \
		/etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null |
		grep -oE 'https?://[^[:space:]]+' | grep -v -- '-security' | head -n1 || true)
	echo "${uri:-http://deb.debian.org/debian}"
}

# make_debian imports a bookworm minbase root as debian:bookworm.
make_debian() {
	local tarball=$CACHE_DIR/bookworm-minbase.tar
	if [[ ! -s $tarball ]]; then
		command -v debootstrap >/dev/null || die "debootstrap is missing: apt-get install debootstrap"
		local mirror root=$work/bookworm
		mirror=$(debian_mirror)
		log "debootstrap bookworm minbase from $mirror (a few minutes, once)"
		debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
			{ tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
		# The image needs no package cache and no apt lists: images that
		# install packages run apt-get update first, as on any Debian image.
		rm -rf "${root:?}"/var/cache/apt/archives/*.deb "${root:?}"/var/lib/apt/lists/* "${root:?}"/dev/*
		cp "$CA_BUNDLE" "$root/etc/ssl/certs/ca-certificates.crt" 2>/dev/null ||
			{ mkdir -p "$root/etc/ssl/certs" && cp "$CA_BUNDLE" "$root/etc/ssl/certs/"; }
		mkdir -p "$CACHE_DIR"
		tar --numeric-owner -C "$root" -cf "$tarball.tmp" .
		mv "$tarball.tmp" "$tarball"
	fi
	log "docker import $DEBIAN_IMAGE"
	docker import --change 'CMD ["bash"]' \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		"$tarball" "$DEBIAN_IMAGE" >/dev/null
}

# make_golang puts this host's Go tree on debian:bookworm, laid out as the
# official golang image is (GOROOT /usr/local/go, GOPATH /go).
make_golang() {
	local goroot=${GO_ROOT:-$(go env GOROOT 2>/dev/null || echo /usr/local/go)}
	[[ -x $goroot/bin/go ]] || die "no Go tree at $goroot (set GO_ROOT)"
	local version
	version=$("$goroot/bin/go" env GOVERSION)
	[[ $version == go1.26* ]] || die "$goroot holds $version, not go1.26"
	local ctx=$work/golang
	mkdir -p "$ctx"
	# A hard-linked copy is instant when both are on one file system.
	cp -al "$goroot" "$ctx/go" 2>/dev/null || cp -a "$goroot" "$ctx/go"
	rm -rf "$ctx/go/pkg/obj" "$ctx/go/.git"
	cp "$CA_BUNDLE" "$ctx/ca-certificates.crt"
	cat >"$ctx/Dockerfile" <<EOF
FROM $DEBIAN_IMAGE
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY go /usr/local/go
ENV GOLANG_VERSION=${version#go} GOTOOLCHAIN=local GOPATH=/go \\
    PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN mkdir -p /go/src /go/bin && chmod -R 1777 /go && go version
WORKDIR /go
EOF
	log "docker build $GO_IMAGE ($version from $goroot)"
	docker build -q --force-rm -t "$GO_IMAGE" "$ctx" >/dev/null 2>"$work/build.log" ||
		{ cat "$work/build.log" >&2; die "docker build $GO_IMAGE failed"; }
}

# make_static builds a root like distroless/static's: no shell, no package
# manager, the users root, nobody and nonroot (65532), CA certificates,
# /tmp, and the time zones when the host has them.
make_static() {
	local root=$work/static
	mkdir -p "$root"/{etc/ssl/certs,home/nonroot,tmp,root,usr/share}
	cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
	cat >"$root/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
tty:x:5:
staff:x:50:
nonroot:x:65532:
EOF
	printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
	printf 'PRETTY_NAME="Distroless stand-in (offline-base-images.sh)"\nID=debian\nVERSION_ID="12"\n' >"$root/etc/os-release"
	cp "$CA_BUNDLE" "$root/etc/ssl/certs/ca-certificates.crt"
	[[ -d /usr/share/zoneinfo ]] && cp -a /usr/share/zoneinfo "$root/usr/share/"
	chown 65532:65532 "$root/home/nonroot"
	chmod 700 "$root/root"
	chmod 1777 "$root/tmp"
	log "docker import $STATIC_IMAGE"
	tar --numeric-owner -C "$root" -c . | docker import \
		--change 'USER 65532:65532' \
		--change 'WORKDIR /home/nonroot' \
		--change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
		- "$STATIC_IMAGE" >/dev/null
}

# make_slim tags debian:bookworm, a minbase root, as debian:bookworm-slim:
# the Dockerfile's NGINX stage installs nginx-light on it.
make_slim() {
	log "docker tag $DEBIAN_IMAGE $SLIM_IMAGE"
	docker tag "$DEBIAN_IMAGE" "$SLIM_IMAGE"
}

main() {
	command -v docker >/dev/null || die "docker is missing"
	local want=("$@")
	((${#want[@]})) || want=("$GO_IMAGE" "$STATIC_IMAGE" "$SLIM_IMAGE")
	local missing=()
	for image in "${want[@]}"; do
		have_image "$image" || missing+=("$image")
	done
	if ((${#missing[@]} == 0)); then
		log "all present: ${want[*]}"
		return
	fi
	for image in "${missing[@]}"; do
		case $image in
		"$GO_IMAGE" | "$SLIM_IMAGE")
			have_image "$DEBIAN_IMAGE" || make_debian
			;;
		esac
		case $image in
		"$GO_IMAGE") make_golang ;;
		"$STATIC_IMAGE") make_static ;;
		"$SLIM_IMAGE") make_slim ;;
		"$DEBIAN_IMAGE") make_debian ;;
		*) die "no stand-in for $image" ;;
		esac
	done
	for image in "${want[@]}"; do
		log "$image: $(docker image inspect --format '{{.Size}}' "$image" | awk '{printf "%.1f MB", $1/1e6}')"
	done
}

main "$@"
