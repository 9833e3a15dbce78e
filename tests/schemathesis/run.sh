#!/usr/bin/env bash
# schemathesis against `acidizer serve` (target/debug/acidizer, built before) on a fresh data directory: requests
# generated from the OpenAPI document it serves at /openapi.json, valid and invalid ones, and sequences of them
# along the document's links (stateful). Every check passes: no 5xx; every status, content type, header and body
# as documented; valid requests accepted, invalid ones refused; and, after the run, every counter it touched has
# an exact history whose every change some 200 answer announced — no 4xx changed a counter (hooks.py).
# Usage: tests/schemathesis/run.sh [MAX_EXAMPLES]  (the schemathesis of tests/tools/.venv, or on PATH)
set -euo pipefail
cd "$(dirname "$0")/../.."
max_examples="${1:-${SCHEMATHESIS_MAX_EXAMPLES:-100}}"

here="$PWD/tests/schemathesis"
schemathesis="$PWD/tests/tools/.venv/bin/schemathesis"
[ -x "$schemathesis" ] || schemathesis="$(command -v schemathesis || true)"
if [ -z "$schemathesis" ]; then
    echo "schemathesis is not installed: run tests/tools/install.sh" >&2
    exit 1
fi
if [ ! -x target/debug/acidizer ]; then
    echo "target/debug/acidizer is missing: cargo build -p acidizer first" >&2
    exit 1
fi

dir="$(mktemp -d)"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
target/debug/acidizer serve --listen "127.0.0.1:$port" --data-dir "$dir/data" --static-dir "$dir/no-site" \
    > "$dir/serve.log" 2>&1 &
serve_pid=$!
trap 'kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do
    curl --silent --fail "http://127.0.0.1:$port/health" >/dev/null && break
    sleep 0.1
done

# The working directory is this run's own, for schemathesis's example database and caches.
status=0
(cd "$dir" && SCHEMATHESIS_HOOKS="$here/hooks.py" "$schemathesis" --config-file "$here/schemathesis.toml" run \
    "http://127.0.0.1:$port/openapi.json" --max-examples "$max_examples" --no-color --output-truncate false) \
    || status=$?
if [ "$status" != 0 ]; then
    echo "--- the server's log (last 50 lines)" >&2
    tail -n 50 "$dir/serve.log" >&2
fi
exit "$status"
