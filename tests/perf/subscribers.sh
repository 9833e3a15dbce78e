#!/usr/bin/env bash
# Live delivery from outside: `acidizer serve` on a fresh data directory, and in another process a client holding
# SUBSCRIBERS WebSocket subscribers (all on one counter) and sending an increment every 100 ms for SECONDS; it
# reports the latency from each increment's answer to its arrival at each subscriber, the server's memory per
# subscriber, and checks the counter's history exact. The client is `acidizer bench --subscribers` (Rust,
# tokio-tungstenite), or with CLIENT=node tests/perf/subscribers.mjs (Node.js and the `ws` package of tests/tools).
# Usage: [CLIENT=bench|node] tests/perf/subscribers.sh [SUBSCRIBERS] [SECONDS]   (after cargo build --release -p acidizer)
set -euo pipefail
cd "$(dirname "$0")/../.."
subscribers="${1:-10000}" seconds="${2:-10}" client="${CLIENT:-bench}"
binary="${ACIDIZER_BIN:-target/release/acidizer}"
# Each subscriber is a socket at both ends: the server and the client each need that many file descriptors.
ulimit -n "$(ulimit -Hn)"
case "$client" in
    node) tests/tools/install.sh --perf time node npm ;;
    *) tests/tools/install.sh --perf time ;;
esac
dir="$(mktemp -d)"
. tests/perf/serve.sh
# Every subscriber comes from one address here: the caps on sessions are raised to take them all.
RUST_LOG=warn start_serve --ws-max-sessions "$((subscribers + 100))" --ws-max-per-client "$((subscribers + 100))"
case "$client" in
    bench)
        /usr/bin/time -f "client: %U s user, %S s system, %M KiB peak" "$binary" bench --url "http://127.0.0.1:$port" \
            --counter live --subscribers "$subscribers" --duration "$seconds" --server-pid "$server"
        ;;
    node)
        /usr/bin/time -f "client: %U s user, %S s system, %M KiB peak" node --max-old-space-size=4096 \
            tests/perf/subscribers.mjs "http://127.0.0.1:$port" "$subscribers" "$seconds" "$server"
        ;;
    *) echo "CLIENT is bench or node, not $client" >&2; exit 2 ;;
esac
awk -v tck="$(getconf CLK_TCK)" '{printf "server: %.2f s user, %.2f s system\n", $14 / tck, $15 / tck}' "/proc/$server/stat"
