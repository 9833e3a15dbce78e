# Sourced by the perf scripts: starts `$binary serve` (ARGS after the defaults) on a free loopback port with a
# fresh data directory in `$dir`, waits until /health answers, and stops it (and removes `$dir`) on exit.
# Sets `port` and `server`. Each script installs what it runs first (`tests/tools/install.sh --perf COMMAND...`).

start_serve() {
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    "$binary" serve --listen "127.0.0.1:$port" --data-dir "$dir/data" --static-dir "$dir/none" "$@" \
        > "$dir/serve.log" 2>&1 &
    server=$!
    trap 'kill "$server" 2>/dev/null || true; rm -rf "$dir"' EXIT
    for _ in $(seq 1 100); do curl --silent --fail "http://127.0.0.1:$port/health" > /dev/null && break; sleep 0.1; done
}
