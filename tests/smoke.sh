#!/usr/bin/env bash
# The smoke test a deploy ends with, against the stage just deployed (or any running acidizer): /health answers,
# `acidizer bench` makes a few hundred changes of the smoke counter and checks them exact, and a WebSocket subscriber
# sees the counter's last change. Any failure exits non-zero.
# Usage: tests/smoke.sh HTTP_API_URL WEBSOCKET_URL
# The bench is $ACIDIZER_BIN, or `acidizer` built here first (cargo build --release) when it is not set. Every run
# changes the one counter $SMOKE_COUNTER ("smoke", which a stage's CounterNames always admits), so runs against
# production do not pile up counters; the bench checks the changes it made, from the counter's state before it.
set -euo pipefail
api="${1:?usage: tests/smoke.sh HTTP_API_URL WEBSOCKET_URL}"
ws="${2:?usage: tests/smoke.sh HTTP_API_URL WEBSOCKET_URL}"
api="${api%/}"
cd "$(dirname "$0")/.."
counter="${SMOKE_COUNTER:-smoke}"
requests="${SMOKE_REQUESTS:-300}"
seen="$(mktemp)"
subscriber=""
trap '[ -z "$subscriber" ] || kill "$subscriber" 2>/dev/null || true; rm -f "$seen"' EXIT

if [ -z "${ACIDIZER_BIN:-}" ]; then
    echo "--- building acidizer (the bench)"
    cargo build --release --locked --quiet -p acidizer
    ACIDIZER_BIN=target/release/acidizer
fi

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
# Failed changes (no answer even with retries of the same key) fail the bench, as does a history that is not exact.
"$ACIDIZER_BIN" bench --url "$api" --requests "$requests" --concurrency 4 --mix 0.2 --counter "$counter"

echo "--- the subscriber sees the last change"
last="$(curl --fail --silent --show-error --max-time 10 "$api/counters/$counter" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["seq"])')"
[ "$last" -gt 0 ] || { echo "the counter did not change" >&2; exit 1; }
for _ in $(seq 1 300); do
    if grep -qx "$last" "$seen"; then
        echo "seq $last arrived ($(wc -l < "$seen") messages)"
        exit 0
    fi
    sleep 0.1
done
echo "the subscriber never saw seq $last; it saw: $(tail -3 "$seen" | tr '\n' ' ')" >&2
exit 1
