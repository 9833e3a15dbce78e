#!/usr/bin/env bash
# The smoke test a deploy ends with, against the stage just deployed (or any running acidizer): /health answers,
# `acidizer bench` makes a few hundred changes of a fresh counter and checks them exact, and a WebSocket subscriber
# sees the counter's last change. Any failure exits non-zero.
# Usage: tests/smoke.sh HTTP_API_URL WEBSOCKET_URL
# The bench runs `cargo run --release -p acidizer`, or $ACIDIZER_BIN when set.
set -euo pipefail
api="${1:?usage: tests/smoke.sh HTTP_API_URL WEBSOCKET_URL}"
ws="${2:?usage: tests/smoke.sh HTTP_API_URL WEBSOCKET_URL}"
api="${api%/}"
cd "$(dirname "$0")/.."
counter="smoke-$(date +%s)-$RANDOM"
requests="${SMOKE_REQUESTS:-300}"
seen="$(mktemp)"
trap 'kill "$subscriber" 2>/dev/null || true; rm -f "$seen"' EXIT

echo "--- /health"
curl --fail --silent --show-error --max-time 10 "$api/health"
echo

echo "--- a subscriber of $counter"
# Node 22 has a WebSocket client built in; Node 20 behind a flag.
node_flags=()
node -e 'process.exit(typeof WebSocket === "function" ? 0 : 1)' || node_flags=(--experimental-websocket)
node "${node_flags[@]}" tests/smoke/subscriber.mjs "$ws" "$counter" > "$seen" &
subscriber=$!
for _ in $(seq 1 100); do [ -s "$seen" ] && break; sleep 0.1; done
[ -s "$seen" ] || { echo "the subscriber got no answer to its sync" >&2; exit 1; }

echo "--- $requests changes, checked exact"
if [ -n "${ACIDIZER_BIN:-}" ]; then
    "$ACIDIZER_BIN" bench --url "$api" --requests "$requests" --concurrency 8 --mix 0.2 --counter "$counter"
else
    cargo run --release --quiet -p acidizer -- bench --url "$api" --requests "$requests" --concurrency 8 \
        --mix 0.2 --counter "$counter"
fi

echo "--- the subscriber sees the last change"
last="$(curl --fail --silent --show-error --max-time 10 "$api/counters/$counter" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["seq"])')"
for _ in $(seq 1 300); do
    if grep -qx "$last" "$seen"; then
        echo "seq $last arrived ($(wc -l < "$seen") messages)"
        exit 0
    fi
    sleep 0.1
done
echo "the subscriber never saw seq $last; it saw: $(tail -3 "$seen" | tr '\n' ' ')" >&2
exit 1
