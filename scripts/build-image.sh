#!/usr/bin/env bash
# Build the runtime image (Dockerfile) on either path:
#   BASE_IMAGE unset           air-gapped: scripts/build-base.sh makes the base from Debian packages
#   BASE_IMAGE=nvidia/cuda:... registry: the base is used when it is local or can be pulled; when it cannot,
#                              the build falls back to the air-gapped base (REQUIRE_BASE=1 makes that an error)
# Then the wheelhouse for the base's Python (scripts/wheelhouse.sh) and `docker build`.
#
# Environment (all optional): IMAGE (default synapse-runtime:dev), BASE_IMAGE, REQUIRE_BASE, WHEEL_PYTHON
# (default: asked of the base, or read from its os-release when it has no Python yet), DOCKER_BUILD_ARGS
# (extra arguments for docker build, e.g. --no-cache), and build-base.sh's own variables.
# Prints the image reference on the last line of stdout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
cd "$repo"

IMAGE="${IMAGE:-synapse-runtime:dev}"
BASE_IMAGE="${BASE_IMAGE:-}"
REQUIRE_BASE="${REQUIRE_BASE:-0}"
DOCKER_BUILD_ARGS="${DOCKER_BUILD_ARGS:-}"

log() { printf '[build-image] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

docker info >/dev/null 2>&1 || die "the Docker engine does not answer"

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

if [ -n "$BASE_IMAGE" ] && ! have_image "$BASE_IMAGE"; then
    log "pulling $BASE_IMAGE"
    if ! timeout 600 docker pull -q "$BASE_IMAGE" >&2; then
        [ "$REQUIRE_BASE" = 1 ] && die "cannot pull $BASE_IMAGE"
        log "cannot pull $BASE_IMAGE: falling back to the air-gapped base"
        BASE_IMAGE=""
        unset WHEEL_PYTHON
    fi
fi
if [ -z "$BASE_IMAGE" ]; then
    BASE_IMAGE="$("$here/build-base.sh" | tail -n 1)"
fi

# The wheelhouse must match the Python the image will run.
if [ -z "${WHEEL_PYTHON:-}" ]; then
    WHEEL_PYTHON="$(docker run --rm --entrypoint sh "$BASE_IMAGE" -c '
        if command -v python3 >/dev/null 2>&1; then
            python3 -c "import sys; print(\"%d.%d\" % sys.version_info[:2])"
        else
            . /etc/os-release
            case "$ID:$VERSION_ID" in
                ubuntu:24.04) echo 3.12 ;; ubuntu:24.10|ubuntu:25.04) echo 3.12 ;; ubuntu:25.10) echo 3.13 ;;
                debian:13) echo 3.13 ;;
                *) echo unknown ;;
            esac
        fi' 2>/dev/null || echo unknown)"
    [ "$WHEEL_PYTHON" != unknown ] \
        || die "cannot tell which Python $BASE_IMAGE will have; set WHEEL_PYTHON (e.g. 3.12)"
fi
export WHEEL_PYTHON
wheelhouse="$("$here/wheelhouse.sh" deps plugins runtime | tail -n 1)"

version="$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')"
revision="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
if [ "$revision" != unknown ] && [ -n "$(git status --porcelain 2>/dev/null | head -n 1)" ]; then
    revision="$revision-dirty"
fi
# The commit's date rather than the clock: an unchanged tree rebuilds to the same image.
created="$(git log -1 --format=%cI 2>/dev/null || true)"

log "docker build $IMAGE (base $BASE_IMAGE, python $WHEEL_PYTHON, wheelhouse $wheelhouse)"
start=$(date +%s)
# shellcheck disable=SC2086
docker build \
    --build-arg BASE_IMAGE="$BASE_IMAGE" \
    --build-arg WHEELHOUSE="$wheelhouse" \
    --build-arg VERSION="$version" \
    --build-arg REVISION="$revision" \
    --build-arg CREATED="$created" \
    $DOCKER_BUILD_ARGS \
    -t "$IMAGE" . >&2
log "built $IMAGE in $(( $(date +%s) - start )) s; $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}')"
echo "$IMAGE"
