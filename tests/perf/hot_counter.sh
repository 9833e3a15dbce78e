#!/usr/bin/env bash
# The hot counter of BENCHMARKS.md: one counter, every change with its own Idempotency-Key, on DynamoDB Local behind
# the model of what DynamoDB does to a hot item (tests/src/dynamo_model.rs: 10 ms a transaction, 3 ms another call,
# a transaction's hold on its items, 1 000 write units a second a partition). Three runs, each `acidizer bench`
# for SECONDS and checked exact after (value = seq = the acknowledged changes, history 1..N without a gap):
#   serve   `acidizer serve --store dynamodb`, 64 connections;
#   api     the `acidizer-api` binary as one Lambda Managed Instances environment (a local Runtime API that hands
#           out invocations as they come, AWS_LAMBDA_MAX_CONCURRENCY=32), 32 callers;
#   three   three such environments racing on the counter, 32 callers each, run at once.
# Prints, for each, the changes a second, p99, and the write units a change (the model's count).
# Usage: tests/perf/hot_counter.sh [SECONDS] [RUNS]   (RUNS: serve api three, all by default)
# The binaries: BIN_DIR (acidizer, acidizer-api: the servers; default target/release), BENCH (the load's
# `acidizer`; default the one in BIN_DIR) and TOOLS_DIR (dynamodb-model, lambda-host; default target/release), from
#   cargo build --release -p acidizer -p acidizer-api -p acidizer-tests \
#     --bin acidizer --bin acidizer-api --bin dynamodb-model --bin lambda-host
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-20}"
shift || true
runs="${*:-serve api three}"
bin="${BIN_DIR:-target/release}"
tools="${TOOLS_DIR:-target/release}"
load="${BENCH:-$bin/acidizer}"
tests/tools/install.sh > /dev/null
dir="$(mktemp -d)"
pids=()
trap 'for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$dir"' EXIT

# Starts a program that prints `listening on URL` in the background: its URL in $url, its pid in $pid.
start() {
    local out="$dir/out-$RANDOM"
    "$@" > "$out" 2> "$out.err" &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 1 600); do
        if grep -q 'http://' "$out"; then
            url="$(grep -o 'http://[0-9.:]*' "$out" | head -1)"
            return
        fi
        sleep 0.1
    done
    echo "$1 did not start: $(cat "$out.err")" >&2
    exit 1
}

export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench RUST_LOG=warn ALLOWED_ORIGINS="*"
counted() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$dir/counts.json" "$1"; }

# Tables of their own for a run: made by `acidizer serve --create-tables`, which then serves them.
tables() {
    export COUNTER_TABLE="hot-$RANDOM$RANDOM" CONNECTIONS_TABLE="connections-$RANDOM$RANDOM"
}

# bench URL CONCURRENCY OUT: the load, checked exact (bench fails otherwise).
bench() {
    "$load" bench --url "$1" --duration "$seconds" --requests 10000000 --concurrency "$2" --counter hot \
        --json > "$3"
}

# report LABEL UNITS_BEFORE OUT...: the run's figures.
report() {
    local label="$1" before="$2"
    shift 2
    sleep 1
    python3 - "$label" "$before" "$(counted writeUnits)" "$@" <<'PY'
import json, sys
label, before, after = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
runs = [json.load(open(path)) for path in sys.argv[4:]]
acked = sum(run["acknowledged"] for run in runs)
rate = sum(run["answersPerSecond"] for run in runs)
p99 = max(run["latencyMs"]["p99"] for run in runs)
shares = ", ".join(f'{run["acknowledged"]}' for run in runs)
print(f"{label}: {rate:.0f} changes/s, p99 {p99:.0f} ms, {acked} acknowledged ({shares}), exact; "
      f"{(after - before) / max(acked, 1):.2f} write units a change")
PY
}

for run in $runs; do
    # A fresh emulator for each run: DynamoDB Local slows down as the records of its tables' streams pile up (a
    # run of 17 000 changes leaves the next one on the same emulator at a tenth of its rate).
    start "$tools/dynamodb-model" "$dir/counts.json"
    model="$pid"
    export AWS_ENDPOINT_URL="$url"
    tables
    start "$bin/acidizer" serve --store dynamodb --create-tables --listen 127.0.0.1:0 --static-dir "$dir/none"
    serve="$url"
    if [ "$run" != serve ]; then
        # It made the tables; the functions serve them.
        kill "$pid"
    fi
    case "$run" in
    serve)
        before="$(counted writeUnits)"
        bench "$serve" 64 "$dir/serve.json"
        report "serve, 64 connections" "$before" "$dir/serve.json"
        kill "$pid"
        ;;
    api)
        AWS_LAMBDA_MAX_CONCURRENCY=32 start "$tools/lambda-host" "$bin/acidizer-api" 1
        before="$(counted writeUnits)"
        bench "$url" 32 "$dir/api.json"
        report "one Managed Instances environment, 32 callers" "$before" "$dir/api.json"
        kill "$pid"
        ;;
    three)
        urls=()
        hosts=()
        for _ in 1 2 3; do
            AWS_LAMBDA_MAX_CONCURRENCY=32 start "$tools/lambda-host" "$bin/acidizer-api" 1
            urls+=("$url")
            hosts+=("$pid")
        done
        before="$(counted writeUnits)"
        bench "${urls[0]}" 32 "$dir/three-0.json" &
        first=$!
        bench "${urls[1]}" 32 "$dir/three-1.json" &
        second=$!
        bench "${urls[2]}" 32 "$dir/three-2.json"
        wait "$first" "$second"
        report "three environments racing, 32 callers each" "$before" "$dir"/three-*.json
        kill "${hosts[@]}"
        ;;
    *)
        echo "no run $run: serve, api or three" >&2
        exit 2
        ;;
    esac
    kill "$model"
    wait "$model" 2>/dev/null || true
done
