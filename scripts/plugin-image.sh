#!/usr/bin/env bash
# One command, an image for YOUR plugin (what `cog build` gives): FROM the runtime image, the plugin's
# requirements.txt (and wheels/*.whl) installed from a wheelhouse, config.yaml checked, every action
# imported at build time, tagged <code>:<version> from config.yaml.
#
#   scripts/plugin-image.sh plugins/sdk-pipeline                 # -> sdk-pipeline:1.0.0
#   scripts/plugin-image.sh ../my-plugin -t registry/my:1 --runtime synapse-runtime:cuda
#   scripts/plugin-image.sh ../my-plugin --offline               # air-gapped: only the wheelhouse already there
#   scripts/plugin-image.sh plugins/sdk-pipeline --deps-only -t synapse-runtime-sdk:dev
#                                     # only the requirements: the runtime image plus synapse-sdk, no plugin
#                                     # baked in (make sdk-image; default tag <code>-deps:<version>)
#
# The wheelhouse is build/plugin-wheels/<code>/ (resolved with uv for the runtime image's Python and
# platform, then downloaded; kept and reused while requirements.txt is unchanged). On an air-gapped host,
# bring that directory (or put the wheels in the plugin's wheels/) and pass --offline: nothing is fetched.
# Environment: RUNTIME_IMAGE (default synapse-runtime:dev), PYTHON (a Python with synapse_runtime, default
# .venv/bin/python), UV (default: uv on PATH, else installed into that venv), WHEEL_PLATFORMS.
set -euo pipefail

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runtime="${RUNTIME_IMAGE:-synapse-runtime:dev}"
python="${PYTHON:-$root/.venv/bin/python}"
tag="" offline=0 deps_only=0 plugin=""
while [ $# -gt 0 ]; do
    case "$1" in
        -t|--tag) tag="$2"; shift 2 ;;
        --runtime) runtime="$2"; shift 2 ;;
        --offline) offline=1; shift ;;
        --deps-only) deps_only=1; shift ;;
        -h|--help) usage ;;
        -*) echo "plugin-image: unknown option $1" >&2; usage ;;
        *) plugin="$1"; shift ;;
    esac
done
[ -n "$plugin" ] || usage
[ -d "$plugin" ] || { echo "plugin-image: $plugin is not a directory (a plugin is a directory with config.yaml)" >&2; exit 2; }
plugin="$(cd "$plugin" && pwd)"
log() { echo "plugin-image: $*" >&2; }

# 1. config.yaml, by the runner's loader and upstream's rules, before anything is fetched.
checked="$("$python" -m synapse_runtime.compat.check_plugin "$plugin")" || exit $?
read -r code version <<<"$checked"
if [ "$deps_only" = 1 ]; then tag="${tag:-$code-deps:$version}"; else tag="${tag:-$code:$version}"; fi
docker image inspect "$runtime" >/dev/null 2>&1 \
    || { log "the runtime image $runtime is not here: build it first (make image) or pass --runtime IMAGE"; exit 2; }
py="$(docker run --rm --entrypoint /opt/synapse/venv/bin/python "$runtime" -c \
      'import sys; print("%d.%d" % sys.version_info[:2])')"
log "$code $version for $runtime (Python $py) -> $tag"

# 2. The wheelhouse: the requirements resolved for the image's Python, then downloaded as wheels only.
wheels="$root/build/plugin-wheels/$code"
reqs="$plugin/requirements.txt"
mkdir -p "$wheels"
stamp="$( { cat "$reqs" 2>/dev/null || true; echo "python=$py"; ls "$plugin"/wheels 2>/dev/null || true; } | sha256sum | cut -c1-16)"
if [ -f "$wheels/.stamp" ] && [ "$(cat "$wheels/.stamp")" = "$stamp" ]; then
    log "wheelhouse $wheels is up to date"
elif [ "$offline" = 1 ]; then
    # No index here: a wheelhouse brought from a connected host, else the plugin's own wheels/.
    if [ ! -f "$wheels/requirements.txt" ]; then
        if [ -s "$reqs" ] && [ ! -d "$plugin/wheels" ]; then
            log "--offline: no wheelhouse at $wheels and no $plugin/wheels: bring build/plugin-wheels/$code/ from a connected host"
            exit 2
        fi
        cp "$plugin"/wheels/*.whl "$wheels/" 2>/dev/null || true
        if [ -s "$reqs" ]; then cp "$reqs" "$wheels/requirements.txt"; else : > "$wheels/requirements.txt"; fi
    fi
    log "--offline: installing from $wheels as it is (no download)"
else
    uv="${UV:-$(command -v uv || true)}"
    if [ -z "$uv" ]; then
        "$python" -m pip install -q --disable-pip-version-check uv
        uv="$(dirname "$python")/uv"
    fi
    platforms="${WHEEL_PLATFORMS:-manylinux2014_x86_64 manylinux_2_17_x86_64 manylinux_2_28_x86_64}"
    tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
    # The runtime's own requirements take part in the resolution, so the pins fit what the image runs.
    printf 'pydantic>=2.6,<3\npyyaml>=6\nboto3>=1.34\n' > "$tmp/runtime.in"
    if [ -s "$reqs" ]; then cat "$reqs" >> "$tmp/runtime.in"; fi
    find_links=(); [ -d "$plugin/wheels" ] && find_links=(--find-links "$plugin/wheels")
    log "resolving with uv for cp$py"
    "$uv" pip compile -q --python-version "$py" --python-platform x86_64-manylinux_2_28 --no-header \
        "${find_links[@]}" -o "$tmp/requirements.txt" "$tmp/runtime.in"
    plat=(); for p in $platforms; do plat+=(--platform "$p"); done
    log "downloading $(grep -cvE '^\s*(#|$)' "$tmp/requirements.txt") wheels"
    mkdir -p "$tmp/wheels"
    "$python" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: --implementation cp \
        --python-version "$py" "${plat[@]}" "${find_links[@]}" -r "$tmp/requirements.txt" -d "$tmp/wheels"
    [ -d "$plugin/wheels" ] && cp "$plugin"/wheels/*.whl "$tmp/wheels/" 2>/dev/null || true
    cp "$tmp/requirements.txt" "$tmp/wheels/requirements.txt"
    rm -rf "$wheels" && mv "$tmp/wheels" "$wheels"
    echo "$stamp" > "$wheels/.stamp"
fi

# 3. The build context: exactly the wheelhouse and the plugin (its own wheels/ and caches left out);
#    --deps-only: the wheelhouse alone, built to the Dockerfile's `requirements` stage.
ctx="$(mktemp -d)"; trap 'rm -rf "$ctx" ${tmp:+"$tmp"}' EXIT
cp -a "$wheels" "$ctx/wheels"
rm -f "$ctx/wheels/.stamp"
target=(--target plugin)
if [ "$deps_only" = 1 ]; then
    target=(--target requirements)
else
    tar -C "$plugin" --exclude=./wheels --exclude='__pycache__' --exclude='*.pyc' --exclude=./.venv -cf - . \
        | { mkdir -p "$ctx/plugin" && tar -C "$ctx/plugin" -xf -; }
fi
cp "$root/docker/plugin/Dockerfile" "$ctx/Dockerfile"
# --force-rm: the legacy builder otherwise keeps a failed step's container (exited 3 after an import
# check that failed) after every such build.
docker build -q --force-rm "${target[@]}" --build-arg RUNTIME_IMAGE="$runtime" --build-arg PLUGIN_CODE="$code" \
    --build-arg PLUGIN_VERSION="$version" -t "$tag" "$ctx" >&2
if [ "$deps_only" = 1 ]; then log "built $tag (requirements only: no plugin baked in)"; else log "built $tag"; fi
echo "$tag"
