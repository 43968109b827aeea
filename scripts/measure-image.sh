#!/usr/bin/env bash
# Measure the runtime image: size, and `docker run` of a noop action against `docker run` of `true`
# (the same image, flags and mounts; only the command differs), medians of N runs each, interleaved.
#
#   scripts/measure-image.sh [IMAGE] [N]        (defaults: $IMAGE or synapse-runtime:dev, 15)
set -euo pipefail

IMAGE="${1:-${IMAGE:-synapse-runtime:dev}}"
N="${2:-15}"
flags=(--rm --read-only --tmpfs /tmp --label synapse-runtime-test=1)

docker image inspect "$IMAGE" >/dev/null
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
echo "image           $IMAGE"
echo "size            $(awk -v s="$size" 'BEGIN {printf "%.0f MB (%.0f MiB)", s/1e6, s/1048576}')"
echo "python          $(docker run "${flags[@]}" --entrypoint python "$IMAGE" -c 'import sys; print(sys.version.split()[0])')"

now() { date +%s%N; }
true_ms=(); noop_ms=()
# One untimed run of each first (page cache).
docker run "${flags[@]}" --entrypoint true "$IMAGE"
docker run "${flags[@]}" -e SYNAPSE_PLUGIN_DIR=/opt/synapse/plugins/faults -e SYNAPSE_ACTION=noop "$IMAGE" >/dev/null
for _ in $(seq "$N"); do
    t0=$(now); docker run "${flags[@]}" --entrypoint true "$IMAGE"; t1=$(now)
    true_ms+=($(( (t1 - t0) / 1000000 )))
    t0=$(now)
    docker run "${flags[@]}" -e SYNAPSE_PLUGIN_DIR=/opt/synapse/plugins/faults -e SYNAPSE_ACTION=noop "$IMAGE" >/dev/null
    t1=$(now)
    noop_ms+=($(( (t1 - t0) / 1000000 )))
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }
mt=$(median "${true_ms[@]}"); mn=$(median "${noop_ms[@]}")
echo "docker run true $mt ms (median of $N; all: ${true_ms[*]})"
echo "docker run noop $mn ms (median of $N; all: ${noop_ms[*]})"
echo "overhead        $(( mn - mt )) ms (noop action over true)"
# Inside the container, without Docker's start-up: the interpreter and the runtime, timed by the shell.
inside=$(docker run "${flags[@]}" -e SYNAPSE_PLUGIN_DIR=/opt/synapse/plugins/faults -e SYNAPSE_ACTION=noop \
    --entrypoint sh "$IMAGE" -c 'for i in 1 2 3 4 5; do s=$(date +%s%N); python /opt/synapse/entrypoint.py >/dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); done' | sort -n | sed -n 3p)
echo "in-container    $inside ms (python entrypoint.py noop, median of 5, no docker)"
