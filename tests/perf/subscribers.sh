#!/usr/bin/env bash
# Live delivery from outside: `acidizer serve` on a fresh data directory, and `acidizer bench --subscribers` in
# another process holding the WebSocket subscribers (all on one counter) and sending an increment every 100 ms; it
# reports the latency from each increment's answer to its arrival at each subscriber, the server's memory per
# subscriber, and checks the counter's history exact.
# Usage: tests/perf/subscribers.sh [SUBSCRIBERS] [SECONDS]   (after cargo build --release -p acidizer)
set -euo pipefail
cd "$(dirname "$0")/../.."
subscribers="${1:-10000}" seconds="${2:-10}"
binary="${ACIDIZER_BIN:-target/release/acidizer}"
# Each subscriber is a socket at both ends: the server and the bench each need that many file descriptors.
ulimit -n "$(ulimit -Hn)"
dir="$(mktemp -d)"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# Every subscriber comes from one address here: the caps on sessions are raised to take them all.
RUST_LOG=warn "$binary" serve --listen "127.0.0.1:$port" --data-dir "$dir/data" --static-dir "$dir/none" \
    --ws-max-sessions "$((subscribers + 100))" --ws-max-per-client "$((subscribers + 100))" \
    > "$dir/serve.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do curl --silent --fail "http://127.0.0.1:$port/health" > /dev/null && break; sleep 0.1; done
/usr/bin/time -f "bench: %U s user, %S s system, %M KiB peak" "$binary" bench --url "http://127.0.0.1:$port" --counter live --subscribers "$subscribers" --duration "$seconds" \
    --server-pid "$server"
awk -v tck="$(getconf CLK_TCK)" '{printf "server: %.2f s user, %.2f s system\n", $14 / tck, $15 / tck}' "/proc/$server/stat"
