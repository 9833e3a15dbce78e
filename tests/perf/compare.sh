#!/usr/bin/env bash
# The durable-throughput comparison of BENCHMARKS.md, in one run on one machine: the naive rate (one SQLite
# transaction per increment, WAL, synchronous=FULL), `acidizer serve` loaded by wrk from outside (tests/perf/wrk.sh,
# checked exact afterwards), and Redis INCR with every write fsynced before its answer (appendfsync always), with
# as many clients (Debian's wrk and redis-server, which it installs). With ROUNDS above 1 the three are measured
# again in turn, each round's ratios taken within the round, and the medians printed after: the machine's speed
# drifts from minute to minute, and a ratio within a round cancels the drift.
# Usage: tests/perf/compare.sh [SECONDS] [CONNECTIONS] [ROUNDS]   (after cargo build --release -p acidizer)
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-10}" connections="${2:-64}" rounds="${3:-1}"
binary="${ACIDIZER_BIN:-target/release/acidizer}"
tests/tools/install.sh --perf wrk redis-server redis-benchmark
dir="$(mktemp -d)"
redis=""
trap 'kill "$redis" 2>/dev/null || true; rm -rf "$dir"' EXIT

# One round: the naive rate, acidizer serve under wrk (checked exact), then Redis; appends a line to rounds.txt.
round() {
    local naive acidizer p99 port requests redis_rate redis_p99
    naive="$("$binary" bench --requests 500 --concurrency 1 --baseline --json \
        | python3 -c 'import json, sys; print(round(json.load(sys.stdin)["naivePerSecond"]))')"

    tests/perf/wrk.sh "$seconds" "$connections" | tee "$dir/wrk.txt"
    acidizer="$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$dir/wrk.txt")"
    p99="$(awk '$1 == "99%" {print $2}' "$dir/wrk.txt")"

    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    rm -f "$dir/appendonly.aof" && rm -rf "$dir/appendonlydir"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly yes --appendfsync always \
        --daemonize no > "$dir/redis.log" 2>&1 &
    redis=$!
    for _ in $(seq 1 100); do redis-cli -p "$port" ping > /dev/null 2>&1 && break; sleep 0.1; done
    requests=$(( acidizer * seconds ))
    redis-benchmark -p "$port" -c "$connections" -n "$requests" -t incr --csv > "$dir/redis.csv"
    redis_rate="$(python3 -c 'import csv, sys; rows = list(csv.reader(open(sys.argv[1]))); print(round(float(rows[1][1])))' "$dir/redis.csv")"
    redis_p99="$(python3 -c 'import csv, sys; rows = list(csv.reader(open(sys.argv[1]))); print(rows[1][6])' "$dir/redis.csv")"
    [ "$(redis-cli -p "$port" get counter:__rand_int__)" -eq "$requests" ] || { echo "Redis lost increments" >&2; exit 1; }
    kill "$redis" && wait "$redis" 2>/dev/null || true
    redis=""
    echo "$naive $acidizer $p99 $redis_rate $redis_p99" >> "$dir/rounds.txt"
}

for _ in $(seq 1 "$rounds"); do
    round
done

python3 - "$dir/rounds.txt" "$connections" <<'PY'
import statistics, sys
rounds = [line.split() for line in open(sys.argv[1])]
print(f"\n{sys.argv[2]} clients, durable increments per second, each round in one run:")
print(f"  {'round':>5}  {'naive SQLite':>12}  {'acidizer (wrk)':>14}  {'p99':>8}  {'x naive':>7}  {'Redis INCR':>10}  {'Redis p99':>9}  {'x Redis':>7}")
naive_ratios, redis_ratios = [], []
for number, (naive, acidizer, p99, redis, redis_p99) in enumerate(rounds, 1):
    naive, acidizer, redis = int(naive), int(acidizer), int(redis)
    naive_ratios.append(acidizer / naive)
    redis_ratios.append(acidizer / redis)
    print(f"  {number:>5}  {naive:>12}  {acidizer:>14}  {p99:>8}  {acidizer / naive:>7.2f}  {redis:>10}  {redis_p99 + ' ms':>9}  {acidizer / redis:>7.2f}")
if len(rounds) > 1:
    print(f"  median ratios: {statistics.median(naive_ratios):.2f}x naive, {statistics.median(redis_ratios):.2f}x Redis")
PY
