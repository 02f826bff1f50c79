#!/bin/bash
# Build the local PostgreSQL 15 image used by the Docker-based tests.
#
# Usage: tests/docker/build-image.sh [--force]
#
# No container registry is reachable from CI, so instead of pulling
# postgres:15 the image is bootstrapped from Debian packages with debootstrap
# and loaded with `docker import`. Its entrypoint (entrypoint.sh) honours the
# same POSTGRES_* variables as the official image.
#
# Environment:
#   ERPPROV_TEST_IMAGE     tag to build (default: erpprov-test/postgres:15)
#   ERPPROV_DEBIAN_MIRROR  Debian mirror URL; by default the first mirror
#                          configured for bookworm in the host's apt sources
#
# Needs root (debootstrap), debootstrap and a running Docker engine.
set -euo pipefail

image="${ERPPROV_TEST_IMAGE:-erpprov-test/postgres:15}"
# postgresql-15 is the PostgreSQL of bookworm; another suite would ship
# another major version and break the image's PATH and tag.
suite=bookworm
pg_bin=/usr/lib/postgresql/15/bin
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

force=0
for arg in "$@"; do
	case "$arg" in
	--force) force=1 ;;
	-h | --help)
		sed -n '2,/^set -/{/^set -/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
		exit 0
		;;
	*)
		echo "build-image.sh: unknown argument: $arg" >&2
		exit 2
		;;
	esac
done

log() { printf '[build-image] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v docker >/dev/null || die "docker CLI not found"
docker info >/dev/null 2>&1 || die "no Docker engine answers (is dockerd running?)"

old_id="$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)"
if [ -n "$old_id" ] && [ "$force" = 0 ]; then
	log "$image already exists ($old_id); use --force to rebuild"
	exit 0
fi

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap needs it)"
command -v debootstrap >/dev/null || die "debootstrap not found (apt-get install debootstrap)"

# Prints the first bookworm mirror found in the host's apt sources, in both
# the one-line (*.list) and deb822 (*.sources) formats. Reading it at run
# time keeps the build on whatever mirror/proxy the machine is allowed to use.
host_mirror() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		awk -v suite="$suite" '
			$1 == "deb" {
				i = 2
				if ($i ~ /^\[/) { while ($i !~ /\]$/ && i < NF) i++; i++ }
				if ($(i + 1) == suite) { print $i; exit }
			}' "$f"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk -v suite="$suite" '
			function flush() {
				if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") && tolower(enabled) != "no") {
					split(uris, u, " "); if (u[1] != "") { print u[1]; found = 1; exit }
				}
				types = uris = suites = enabled = ""
			}
			/^[ \t]*#/ { next }
			/^[ \t]*$/ { flush(); next }
			/^[A-Za-z-]+:/ {
				key = tolower($1); sub(/:$/, "", key)
				val = $0; sub(/^[^:]*:[ \t]*/, "", val)
				if (key == "types") types = val
				else if (key == "uris") uris = val
				else if (key == "suites") suites = val
				else if (key == "enabled") enabled = val
			}
			END { if (!found) flush() }' "$f"
	done
}

mirror="${ERPPROV_DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
	mirror="$(host_mirror | grep -E '^(https?|file)://' | head -n 1 || true)"
fi
if [ -n "$mirror" ]; then
	log "using Debian mirror $mirror"
else
	log "no $suite mirror in the host's apt sources; using debootstrap's default"
fi

workdir="$(mktemp -d "${TMPDIR:-/tmp}/erpprov-image.XXXXXX")"
rootfs="$workdir/rootfs"
cleanup() {
	# debootstrap mounts /proc and /sys inside the target; deleting through a
	# mount that is still there would reach into the host's trees, so unmount
	# first and never let rm cross into another file system.
	awk -v d="$workdir/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null || true; done
	rm -rf --one-file-system "$workdir"
}
trap cleanup EXIT

start=$SECONDS
log "bootstrapping $suite + postgresql-15 into $rootfs"
# minbase + only the server package (no recommends) keeps download and
# unpack time, and hence the build, to about a minute.
if ! debootstrap --variant=minbase --components=main --include=postgresql-15 \
	"$suite" "$rootfs" ${mirror:+"$mirror"} >"$workdir/debootstrap.log" 2>&1; then
	tail -n 40 "$workdir/debootstrap.log" >&2
	[ -f "$rootfs/debootstrap/debootstrap.log" ] && tail -n 40 "$rootfs/debootstrap/debootstrap.log" >&2
	die "debootstrap failed"
fi
log "debootstrap done in $((SECONDS - start)) s"

# Trim what a throw-away test container never reads, to keep the import
# and every container start cheap:
#  - the Debian-style "main" cluster the package created: the entrypoint
#    makes its own in $PGDATA;
#  - package caches, docs, man pages, message catalogues, logs;
#  - LLVM and the JIT provider (~150 MB): without llvmjit.so the server just
#    runs queries without JIT, which the tests never need.
(
	cd "$rootfs"
	rm -rf etc/postgresql/15/main var/lib/postgresql/15 \
		var/cache/apt/archives/*.deb var/cache/apt/*.bin var/lib/apt/lists/* \
		usr/share/doc/* usr/share/man/* usr/share/info/* usr/share/locale/* \
		usr/share/lintian usr/share/linda var/cache/debconf/*-old var/cache/man/* \
		var/log/*.log var/log/apt/* debootstrap \
		usr/lib/postgresql/15/lib/llvmjit*.so usr/lib/postgresql/15/lib/bitcode \
		usr/lib/*/libLLVM-*.so* usr/lib/*/libz3.so*
)

install -m 0755 "$here/entrypoint.sh" "$rootfs/usr/local/bin/docker-entrypoint.sh"
mkdir -p "$rootfs/docker-entrypoint-initdb.d"
# The socket directory must be writable when the container runs with --user.
install -d -m 3777 "$rootfs/run/postgresql"
chroot "$rootfs" chown postgres:postgres /run/postgresql
[ -x "$rootfs$pg_bin/pg_isready" ] || die "pg_isready missing from the image"

log "importing into docker as $image"
# `docker import --change` cannot set STOPSIGNAL on older engines (Debian's
# docker.io 20.10), so the root file system is imported under a temporary
# tag and the image metadata is added by a context-less `docker build`
# (legacy builder: BuildKit may be absent, and nothing here needs it).
base_tag="${image%:*}:rootfs-tmp-$$"
trap 'docker image rm "$base_tag" >/dev/null 2>&1 || true; cleanup' EXIT
tar -C "$rootfs" --numeric-owner --exclude='./proc/*' --exclude='./sys/*' -c . |
	docker import --message "Debian $suite + postgresql-15 for erpprov tests" - "$base_tag" >/dev/null
# STOPSIGNAL SIGINT is PostgreSQL's "fast shutdown": SIGTERM would be a
# "smart" one that waits for every client to disconnect, outliving
# `docker stop`'s grace period. No VOLUME, unlike the official image, so
# test runs do not leave anonymous volumes behind.
# Output is only shown on failure: newer CLIs print a legacy-builder
# deprecation banner that would only clutter CI logs.
if ! build_out="$(DOCKER_BUILDKIT=0 docker build --quiet --tag "$image" - 2>&1 <<EOF
FROM $base_tag
ENV PATH=$pg_bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    PGDATA=/var/lib/postgresql/data
LABEL org.opencontainers.image.title="erpprov-test-postgres"
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["postgres"]
EOF
)"; then
	printf '%s\n' "$build_out" >&2
	die "docker build of the image metadata failed"
fi
new_id="$(docker image inspect --format '{{.Id}}' "$image")"

# A forced rebuild leaves the previous image untagged; drop it unless a
# container still uses it.
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
	docker image rm "$old_id" >/dev/null 2>&1 || true
fi

size="$(docker image inspect --format '{{.Size}}' "$image")"
log "built $image ($new_id, $((size / 1024 / 1024)) MiB) in $((SECONDS - start)) s"
