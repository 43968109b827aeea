#!/usr/bin/env bash
# Garage 2.5.0, the project's real S3 server for tests and benchmarks (docs/storage.md, "Tests").
#
#   scripts/garage.sh bin     print the path of a garage binary, getting one first if needed
#   scripts/garage.sh node    run a single-node server in the foreground (configured from env, below)
#
# `bin` looks, in order, for: $GARAGE_BIN; a cached copy at $GARAGE_CACHE/bin/garage (default
# ~/.cache/synapse-runtime/garage-2.5.0); the prebuilt gzip at ../shared/tools/ beside the repository
# (CI runs in a fresh clone whose parent holds shared/), unpacked into the cache; else it builds it with
# `cargo install garage --version 2.5.0 --locked --root $GARAGE_CACHE` (about 15 minutes on 2 cores,
# once per machine: later runs reuse the cache).  The prebuilt copy's sha256 is checked.
#
# `node` environment (all optional except GARAGE_DIR):
#   GARAGE_DIR          metadata and data directory (created)
#   GARAGE_S3_ADDR      S3 API listen address            (default 127.0.0.1:3900)
#   GARAGE_RPC_ADDR     RPC address (single node)         (default 127.0.0.1:3901)
#   GARAGE_ADMIN_ADDR   admin API address                 (default 127.0.0.1:3903)
#   GARAGE_REGION       the S3 region clients must sign   (default garage)
#   GARAGE_KEY_ID       access key to import: GK + 24 hex (default: a fixed test key)
#   GARAGE_SECRET_KEY   its secret: 64 hex                (default: a fixed test secret)
#   GARAGE_BUCKETS      buckets to create, space separated; the key may also create buckets
#   GARAGE_READY_FILE   touched once the server is configured (health checks, test fixtures)
# Test credentials only: this server never holds real data.
set -euo pipefail

VERSION=2.5.0
SHA256=9a342e156c80be0bbcd796a3ea90de2351b36bc8b42bf3c64839982dc83a8af7
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
GARAGE_CACHE="${GARAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/synapse-runtime/garage-$VERSION}"
PREBUILT="${GARAGE_PREBUILT:-$repo/../shared/tools/garage-$VERSION-x86_64-linux-gnu.gz}"

log() { printf '[garage] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

resolve_bin() {
    if [ -n "${GARAGE_BIN:-}" ]; then
        [ -x "$GARAGE_BIN" ] || die "GARAGE_BIN=$GARAGE_BIN is not an executable file"
        echo "$GARAGE_BIN"; return
    fi
    local cached="$GARAGE_CACHE/bin/garage"
    if [ -x "$cached" ]; then echo "$cached"; return; fi
    mkdir -p "$GARAGE_CACHE/bin"
    if [ -f "$PREBUILT" ] && [ "$(uname -m)" = x86_64 ]; then
        log "unpacking $PREBUILT into $GARAGE_CACHE"
        local tmp="$cached.tmp.$$"
        gzip -dc "$PREBUILT" > "$tmp"
        if [ "$(sha256sum "$tmp" | cut -d' ' -f1)" != "$SHA256" ]; then
            rm -f "$tmp"; die "$PREBUILT does not have the expected sha256 $SHA256"
        fi
        chmod +x "$tmp" && mv "$tmp" "$cached"
        echo "$cached"; return
    fi
    command -v cargo >/dev/null 2>&1 || die "no garage binary (GARAGE_BIN, $cached, $PREBUILT) and no cargo to build one"
    log "building garage $VERSION with cargo (about 15 minutes on 2 cores; cached in $GARAGE_CACHE)"
    cargo install garage --version "$VERSION" --locked --root "$GARAGE_CACHE" >&2
    strip "$cached" 2>/dev/null || true
    echo "$cached"
}

run_node() {
    : "${GARAGE_DIR:?GARAGE_DIR must name a directory for the node}"
    local bin s3 rpc admin region key secret conf
    bin="$(resolve_bin)"
    s3="${GARAGE_S3_ADDR:-127.0.0.1:3900}"
    rpc="${GARAGE_RPC_ADDR:-127.0.0.1:3901}"
    admin="${GARAGE_ADMIN_ADDR:-127.0.0.1:3903}"
    region="${GARAGE_REGION:-garage}"
    key="${GARAGE_KEY_ID:-GK0123456789abcdef01234567}"
    secret="${GARAGE_SECRET_KEY:-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef}"
    mkdir -p "$GARAGE_DIR/meta" "$GARAGE_DIR/data"
    conf="$GARAGE_DIR/garage.toml"
    cat > "$conf" <<EOF
metadata_dir = "$GARAGE_DIR/meta"
data_dir = "$GARAGE_DIR/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "$rpc"
rpc_public_addr = "$rpc"
rpc_secret = "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
[s3_api]
s3_region = "$region"
api_bind_addr = "$s3"
root_domain = ".s3.garage.localhost"
[admin]
api_bind_addr = "$admin"
EOF
    chmod 600 "$conf"
    local g=("$bin" -c "$conf")
    RUST_LOG="${RUST_LOG:-warn}" "${g[@]}" server &
    local pid=$!
    trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid"; exit 0' TERM INT
    local id="" i
    for i in $(seq 1 300); do  # `node id` reads a local file: ask `status`, which needs the RPC up
        if "${g[@]}" status >/dev/null 2>&1; then
            id="$("${g[@]}" node id -q 2>/dev/null | cut -d@ -f1)"
            break
        fi
        kill -0 "$pid" 2>/dev/null || die "the server exited"
        sleep 0.1
    done
    [ -n "$id" ] || die "the server did not answer within 30 s"
    "${g[@]}" layout assign -z dc1 -c 20G "$id" >/dev/null
    "${g[@]}" layout apply --version 1 >/dev/null
    "${g[@]}" key import --yes -n test "$key" "$secret" >/dev/null
    "${g[@]}" key allow --create-bucket "$key" >/dev/null
    local b
    for b in ${GARAGE_BUCKETS:-}; do
        "${g[@]}" bucket create "$b" >/dev/null
        "${g[@]}" bucket allow --read --write --owner "$b" --key "$key" >/dev/null
    done
    [ -z "${GARAGE_READY_FILE:-}" ] || touch "$GARAGE_READY_FILE"
    log "ready: S3 on http://$s3 (region $region)"
    wait "$pid"
}

case "${1:-}" in
    bin) resolve_bin ;;
    node) run_node ;;
    *) sed -n '2,22p' "$0" >&2; exit 2 ;;
esac
