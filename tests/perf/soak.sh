#!/usr/bin/env bash
# The soak: `acidizer serve` (release build, embedded store, fresh data directory) under a bounded mixed load on
# loopback for MINUTES — wrk with tests/perf/soak.lua (increments, decrements, replays, reads, history, junk), and
# tests/perf/ws_churn.mjs (WebSocket subscribers opened and closed all along, syncing, pinging, sending junk) —
# while the server's resident memory, threads and file descriptors are sampled every 10 s. Afterwards every soak
# counter's history is checked exact. Fails on any 5xx, any WebSocket failure, or a history that is not exact.
# Usage: tests/perf/soak.sh [MINUTES]   (after cargo build --release -p acidizer)
set -euo pipefail
cd "$(dirname "$0")/../.."
minutes="${1:-10}"
binary="${ACIDIZER_BIN:-target/release/acidizer}"
tests/tools/install.sh --perf wrk node npm
dir="$(mktemp -d)"
. tests/perf/serve.sh
start_serve

sample() {
    echo "seconds,rss_kib,threads,fds"
    local started=$SECONDS
    while kill -0 "$server" 2>/dev/null; do
        rss="$(awk '/^VmRSS/ {print $2}' "/proc/$server/status")"
        threads="$(awk '/^Threads/ {print $2}' "/proc/$server/status")"
        fds="$(ls "/proc/$server/fd" | wc -l)"
        echo "$((SECONDS - started)),$rss,$threads,$fds"
        sleep 10
    done
}
sample > "$dir/memory.csv" &
sampler=$!

node_flags=()
node -e 'process.exit(typeof WebSocket === "function" ? 0 : 1)' || node_flags=(--experimental-websocket)
node "${node_flags[@]}" tests/perf/ws_churn.mjs "ws://127.0.0.1:$port/ws" "$((minutes * 60))" 200 > "$dir/ws.json" &
churn=$!
wrk -t2 -c8 -d"${minutes}m" --timeout 10s --latency -s tests/perf/soak.lua "http://127.0.0.1:$port" | tee "$dir/wrk.txt"
churn_ok=0
wait "$churn" || churn_ok=$?
echo "WebSocket churn: $(cat "$dir/ws.json")"
kill "$sampler" 2>/dev/null || true

python3 - "$port" "$dir/memory.csv" "$dir/wrk.txt" <<'PY'
import csv, json, re, sys, urllib.request
port, samples, report = sys.argv[1], list(csv.DictReader(open(sys.argv[2]))), open(sys.argv[3]).read()
get = lambda path: json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}{path}"))
changes = 0
for n in range(8):
    name = f"soak-{n}"
    state, items, before = get(f"/counters/{name}"), [], None
    while True:
        page = get(f"/counters/{name}/history?limit=100" + (f"&before={before}" if before else ""))
        items += page["items"]
        if page["next"] is None:
            break
        before = page["next"]
    items.reverse()
    assert [i["seq"] for i in items] == list(range(1, state["seq"] + 1)), f"{name}: the history has a gap"
    value = 0
    for item in items:
        value += item["delta"]
        assert item["delta"] in (1, -1) and item["value"] == value >= 0, (name, item)
    assert value == state["value"], (name, value, state)
    changes += state["seq"]
print(f"exact: {changes} changes over 8 counters, each history 1..seq without a gap, values the running sums, never below 0")
rss = [int(s["rss_kib"]) for s in samples]
print("memory (RSS, MiB) every minute: " + " ".join(f"{rss[i] / 1024:.1f}" for i in range(0, len(rss), 6)))
steady = rss[len(rss) // 10:] or rss
print(f"RSS after the first tenth: min {min(steady) / 1024:.1f} MiB, max {max(steady) / 1024:.1f} MiB; "
      f"threads {samples[-1]['threads']}, fds {samples[-1]['fds']} at the end")
errors = int(re.search(r"5xx answers: (\d+)", report).group(1))
assert errors == 0, f"{errors} answers were 5xx"
PY
[ "$churn_ok" = 0 ] || { echo "the WebSocket churn failed" >&2; exit 1; }
