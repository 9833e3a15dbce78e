#!/usr/bin/env bash
# Live updates at scale (BENCHMARKS.md): `acidizer-stream` run as Lambda runs it by tests/src/bin/broadcast-bench.rs,
# on a fresh DynamoDB Local for each run, against a Management API stand-in that throttles past a rate.
#   one      20 000 subscribers, 120 ms a post, 1 500 posts a second allowed: one change to every subscriber
#   many     100 000 subscribers, 20 ms a post, 10 000 a second allowed
#   hot      20 000 subscribers as in `one`, while the counter changes 1 000 times a second for 30 s
# Usage: tests/perf/broadcast.sh [RUNS]   (one many hot, all by default), after
#   cargo build --release -p acidizer-stream -p acidizer-tests --bin acidizer-stream --bin broadcast-bench
# (BIN_DIR: where those are; default target/release).
set -euo pipefail
cd "$(dirname "$0")/../.."
runs="${*:-one many hot}"
bin="${BIN_DIR:-target/release}"
tests/tools/install.sh > /dev/null
for run in $runs; do
    echo "=== $run"
    case "$run" in
        one) "$bin/broadcast-bench" "$bin/acidizer-stream" 20000 120 1500 ;;
        many) "$bin/broadcast-bench" "$bin/acidizer-stream" 100000 20 10000 ;;
        hot) "$bin/broadcast-bench" "$bin/acidizer-stream" 20000 120 1500 1000 30 ;;
        *) echo "a run is one, many or hot, not $run" >&2; exit 2 ;;
    esac
done
