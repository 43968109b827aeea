#!/usr/bin/env bash
# Wait until a Job (or a JobSet) has finished, either way:
#   exit 0  Complete (a JobSet: Completed)
#   exit 1  Failed; prints the reason and, for an Indexed Job, .status.failedIndexes: the shards to rerun
#   exit 2  still running at the timeout (or a usage error)
# `kubectl wait --for=condition=complete` never returns on a Failed Job (it waits out its timeout), and
# Failed is the usual state before a rerun. kubectl wait cannot wait for one of two conditions, so poll.
#
# usage: deploy/k8s/wait-job.sh NAME|job/NAME|jobset/NAME [TIMEOUT: 90s, 30m, 1h; default 1h] [kubectl flags, e.g. -n ml]
set -euo pipefail

usage() { echo "usage: $0 NAME|job/NAME|jobset/NAME [TIMEOUT (90s|30m|1h)] [kubectl flags...]" >&2; exit 2; }
[[ $# -ge 1 ]] || usage
ref=$1; shift
[[ $ref == */* ]] || ref="job/$ref"
limit=${1:-1h}; [[ $# -ge 1 ]] && shift
case $limit in
  *h) seconds=$(( ${limit%h} * 3600 )) ;;
  *m) seconds=$(( ${limit%m} * 60 )) ;;
  *s) seconds=${limit%s} ;;
  *[!0-9]*|'') usage ;;
  *) seconds=$limit ;;
esac
interval=${WAIT_JOB_INTERVAL:-5}
deadline=$(( SECONDS + seconds ))

while :; do
  # the conditions that hold, e.g. "SuccessCriteriaMet Complete " or "FailureTarget Failed "
  conditions=$(kubectl get "$ref" "$@" -o 'jsonpath={range .status.conditions[?(@.status=="True")]}{.type}{" "}{end}')
  case " $conditions " in
    *" Complete "*|*" Completed "*)
      echo "$ref: complete"
      exit 0 ;;
    *" Failed "*)
      reason=$(kubectl get "$ref" "$@" -o 'jsonpath={.status.conditions[?(@.type=="Failed")].reason}: {.status.conditions[?(@.type=="Failed")].message}')
      echo "$ref: failed ($reason)" >&2
      failed=$(kubectl get "$ref" "$@" -o 'jsonpath={.status.failedIndexes}')
      [[ -n $failed ]] && echo "$ref: failed indexes (rerun these shards): $failed" >&2
      exit 1 ;;
  esac
  if (( SECONDS >= deadline )); then
    echo "$ref: neither complete nor failed after $limit (conditions: ${conditions:-none})" >&2
    exit 2
  fi
  sleep "$interval"
done
