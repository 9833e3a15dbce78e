#!/usr/bin/env bash
# Durable increments per second from outside: `acidizer serve` on a fresh data directory (the embedded store),
# loaded by wrk (Debian's `wrk`) with 64 connections for 10 s, then checked exact: the counter's value and seq equal
# the number of increments wrk got a 200 for, and its history holds seq 1..N, each value one more than the last.
# Usage: tests/perf/wrk.sh [SECONDS] [CONNECTIONS]   (after cargo build --release -p acidizer)
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-10}" connections="${2:-64}"
binary="${ACIDIZER_BIN:-target/release/acidizer}"
tests/tools/install.sh --perf wrk
dir="$(mktemp -d)"
. tests/perf/serve.sh
start_serve

wrk -t2 -c"$connections" -d"${seconds}s" --latency -s tests/perf/increment.lua \
    "http://127.0.0.1:$port/counters/wrk/increment" | tee "$dir/wrk.txt"

python3 - "$port" "$dir/wrk.txt" "$connections" <<'PY'
import json, re, sys, urllib.request
port, report = sys.argv[1], open(sys.argv[2]).read()
sent = int(re.search(r"(\d+) requests in", report).group(1))
non_ok = re.search(r"Non-2xx or 3xx responses: (\d+)", report)
ok = sent - (int(non_ok.group(1)) if non_ok else 0)
get = lambda path: json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}{path}"))
state = get("/counters/wrk")
# wrk stops with up to one request per connection in flight: those may commit without wrk counting them.
assert state["value"] == state["seq"] and ok <= state["seq"] <= sent + int(sys.argv[3]), (state, ok, sent)
expected, before = state["seq"], None
while True:
    page = get("/counters/wrk/history?limit=100" + (f"&before={before}" if before else ""))
    for item in page["items"]:
        assert item["seq"] == expected and item["value"] == expected and item["delta"] == 1, item
        expected -= 1
    if page["next"] is None:
        break
    before = page["next"]
assert expected == 0, f"history ends at seq {expected + 1}, not 1"
print(f"exact: value = seq = {state['seq']} ({ok} answered 200 by wrk), history 1..{state['seq']} without a gap")
PY
