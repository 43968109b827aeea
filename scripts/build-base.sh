#!/usr/bin/env bash
# Build the air-gapped base image: a Debian minbase rootfs made with debootstrap from the Debian mirror the
# host's apt already uses, then `docker import`ed. No image registry is involved at any point.
#
#   scripts/build-base.sh            build unless an image built from the same inputs exists
#   FORCE=1 scripts/build-base.sh    rebuild regardless
#
# Inputs (environment, all optional):
#   BASE_IMAGE_NAME  image name               (default synapse-runtime-base)
#   DEBIAN_SUITE     Debian release            (default trixie: Python 3.13; bookworm's 3.11 is too old)
#   DEBIAN_MIRROR    mirror URL                (default: the first Debian mirror in the host's apt sources,
#                                               else http://deb.debian.org/debian)
#   BASE_PACKAGES    packages beyond minbase   (default below)
#   BUILD_DIR        scratch dir for the rootfs (default build/base under the repo; removed after import)
#   FORCE            1 to rebuild
#
# The image gets two tags: NAME:SUITE (what the Dockerfile's BASE_IMAGE points at) and NAME:SUITE-HASH, where
# HASH digests this script and the inputs above (not the mirror: a mirror is a location, not content).
# Prints the NAME:SUITE reference on the last line of stdout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"

BASE_IMAGE_NAME="${BASE_IMAGE_NAME:-synapse-runtime-base}"
DEBIAN_SUITE="${DEBIAN_SUITE:-trixie}"
BASE_PACKAGES="${BASE_PACKAGES:-python3 python3-venv ca-certificates tini}"
BUILD_DIR="${BUILD_DIR:-$repo/build/base}"
FORCE="${FORCE:-0}"

log() { printf '[build-base] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

detect_mirror() {
    # deb822 .sources files first (URIs: ...), then one-line sources.list entries.
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        uri="$(awk '/^URIs:/ {for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) {print $i; exit}}' "$f")"
        [ -n "$uri" ] && { echo "$uri"; return; }
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        uri="$(awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\/.*\/debian\/?$/) {print $i; exit}}' "$f")"
        [ -n "$uri" ] && { echo "$uri"; return; }
    done
    echo "http://deb.debian.org/debian"
}
DEBIAN_MIRROR="${DEBIAN_MIRROR:-$(detect_mirror)}"

command -v docker >/dev/null || die "docker is not installed"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer"

# One build at a time (make -j, two sessions): the second waits, then finds the first one's image.
mkdir -p "$BUILD_DIR"
exec 9>"$BUILD_DIR/.lock"
flock 9

input_hash="$(
    {
        cat "${BASH_SOURCE[0]}"
        printf 'suite=%s\npackages=%s\n' "$DEBIAN_SUITE" "$BASE_PACKAGES"
    } | sha256sum | cut -c1-12
)"
ref="$BASE_IMAGE_NAME:$DEBIAN_SUITE"
hashed_ref="$BASE_IMAGE_NAME:$DEBIAN_SUITE-$input_hash"

if [ "$FORCE" != 1 ] && docker image inspect "$hashed_ref" >/dev/null 2>&1; then
    # Make sure the moving tag points at the cached build too (someone may have retagged it).
    docker tag "$hashed_ref" "$ref"
    log "cached: $hashed_ref (FORCE=1 to rebuild)"
    echo "$ref"
    exit 0
fi

if ! command -v debootstrap >/dev/null; then
    [ "$(id -u)" = 0 ] || die "debootstrap is missing; install it (apt-get install -y debootstrap)"
    log "installing debootstrap"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2
fi
[ "$(id -u)" = 0 ] || die "debootstrap needs root"

# Debootstrap's own keyring check: the host's debian-archive-keyring must know the suite's keys.
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
keyring_opt=()
[ -r "$keyring" ] && keyring_opt=(--keyring="$keyring")

# The suite script: debootstrap on an older host may not know a newer suite by name; sid's script works.
if [ ! -e "/usr/share/debootstrap/scripts/$DEBIAN_SUITE" ]; then
    script_opt=(/usr/share/debootstrap/scripts/sid)
else
    script_opt=()
fi

root="$BUILD_DIR/rootfs"
cleanup() {
    # The rootfs holds device nodes and root-owned files: remove it carefully, and only our own directory.
    if [ -n "${root:-}" ] && [ -d "$root" ]; then
        for m in proc sys dev/pts dev; do
            mountpoint -q "$root/$m" 2>/dev/null && umount -l "$root/$m" || true
        done
        rm -rf --one-file-system "$root"
    fi
}
trap cleanup EXIT
cleanup
mkdir -p "$BUILD_DIR"

packages_csv="$(echo "$BASE_PACKAGES" | tr -s ' ' ',' | sed 's/^,//; s/,$//')"
log "debootstrap $DEBIAN_SUITE (minbase + $packages_csv) from $DEBIAN_MIRROR"
start=$(date +%s)
debootstrap --variant=minbase --include="$packages_csv" "${keyring_opt[@]}" \
    "$DEBIAN_SUITE" "$root" "$DEBIAN_MIRROR" "${script_opt[@]}" >&2 \
    || { tail -n 50 "$root/debootstrap/debootstrap.log" >&2 2>/dev/null || true; die "debootstrap failed"; }
log "debootstrap took $(( $(date +%s) - start )) s"

# Trim: package caches, indexes, docs, man pages, locales (the runtime speaks C.UTF-8), logs.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin \
       "$root"/var/lib/apt/lists/* "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old \
       "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
       "$root"/usr/share/lintian "$root"/usr/share/linda \
       "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/debootstrap
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} + 2>/dev/null || true
# Keep later apt runs (in derived images) from reinstalling docs, and point apt at the mirror used here.
mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
cat >"$root/etc/dpkg/dpkg.cfg.d/01-synapse-nodoc" <<'EOF'
path-exclude=/usr/share/doc/*
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
EOF
echo "deb $DEBIAN_MIRROR $DEBIAN_SUITE main" >"$root/etc/apt/sources.list"
# Mounts debootstrap may have left and per-host files that docker provides at run time.
: >"$root/etc/hostname"
rm -f "$root/etc/resolv.conf" "$root/etc/machine-id" && : >"$root/etc/machine-id"

python_version="$(chroot "$root" python3 -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
log "python in base: $python_version"

created="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
log "docker import -> $hashed_ref"
start=$(date +%s)
tar --numeric-owner -C "$root" -c . | docker import \
    -c "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    -c "ENV LANG=C.UTF-8" \
    -c "CMD [\"/bin/bash\"]" \
    -c "LABEL org.opencontainers.image.title=$BASE_IMAGE_NAME" \
    -c "LABEL org.opencontainers.image.description=\"Debian $DEBIAN_SUITE minbase with Python $python_version (debootstrap)\"" \
    -c "LABEL org.opencontainers.image.created=$created" \
    -c "LABEL io.synapse.base.suite=$DEBIAN_SUITE" \
    -c "LABEL io.synapse.base.python=$python_version" \
    -c "LABEL io.synapse.base.input-hash=$input_hash" \
    -m "debootstrap --variant=minbase $DEBIAN_SUITE + $packages_csv" \
    - "$hashed_ref" >&2
docker tag "$hashed_ref" "$ref"
log "import took $(( $(date +%s) - start )) s; size $(docker image inspect -f '{{.Size}}' "$ref" | awk '{printf "%.0f MB", $1/1e6}')"
echo "$ref"
