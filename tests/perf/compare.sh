#!/usr/bin/env bash
# The durable-throughput comparison of BENCHMARKS.md, in one run on one machine: the naive rate (one SQLite
# transaction per increment, WAL, synchronous=FULL), `acidizer serve` loaded by wrk from outside (tests/perf/wrk.sh,
# checked exact afterwards), and Redis INCR with every write fsynced before its answer (appendfsync always), with
# as many clients (Debian's wrk and redis-server, which it installs).
# Usage: tests/perf/compare.sh [SECONDS] [CONNECTIONS]   (after cargo build --release -p acidizer)
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-10}" connections="${2:-64}"
binary="${ACIDIZER_BIN:-target/release/acidizer}"
tests/tools/install.sh --perf wrk redis-server redis-benchmark
dir="$(mktemp -d)"
trap 'kill "$redis" 2>/dev/null || true; rm -rf "$dir"' EXIT

naive="$("$binary" bench --requests 100 --concurrency 1 --baseline --json \
    | python3 -c 'import json, sys; print(round(json.load(sys.stdin)["naivePerSecond"]))')"

tests/perf/wrk.sh "$seconds" "$connections" | tee "$dir/wrk.txt"
acidizer="$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$dir/wrk.txt")"
p99="$(awk '$1 == "99%" {print $2}' "$dir/wrk.txt")"

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly yes --appendfsync always \
    --daemonize no > "$dir/redis.log" 2>&1 &
redis=$!
for _ in $(seq 1 100); do redis-cli -p "$port" ping > /dev/null 2>&1 && break; sleep 0.1; done
requests=$(( acidizer * seconds ))
redis-benchmark -p "$port" -c "$connections" -n "$requests" -t incr --csv > "$dir/redis.csv"
redis_rate="$(python3 -c 'import csv, sys; rows = list(csv.reader(open(sys.argv[1]))); print(round(float(rows[1][1])))' "$dir/redis.csv")"
redis_p99="$(python3 -c 'import csv, sys; rows = list(csv.reader(open(sys.argv[1]))); print(rows[1][6])' "$dir/redis.csv")"
[ "$(redis-cli -p "$port" get counter:__rand_int__)" -eq "$requests" ] || { echo "Redis lost increments" >&2; exit 1; }

python3 - "$naive" "$acidizer" "$p99" "$redis_rate" "$redis_p99" "$connections" <<'PY'
import sys
naive, acidizer, p99, redis, redis_p99, connections = sys.argv[1:]
naive, acidizer, redis = int(naive), int(acidizer), int(redis)
print(f"\n{connections} clients, durable increments per second, in one run:")
print(f"  naive SQLite (one transaction each)   {naive:>7}")
print(f"  acidizer serve (wrk)                  {acidizer:>7}  p99 {p99}   {acidizer / naive:.2f}x naive, {acidizer / redis:.2f}x Redis")
print(f"  Redis INCR, appendfsync always        {redis:>7}  p99 {redis_p99} ms")
PY
