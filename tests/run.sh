#!/usr/bin/env bash
# Runs every test of acidizer: the Rust workspace (unit, contract on SQLite / DynamoDB on moto / the Lambda
# binaries, live updates, durability, layout) and the SPA (lint, typecheck, Vitest, and the end-to-end test in
# Chromium). Installs what is missing: moto (pip), the SPA's packages (npm), Chromium (apt, when root).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c 'import moto.moto_server.werkzeug_app, werkzeug' 2>/dev/null; then
    echo "installing the DynamoDB emulator (moto) ..."
    python3 -m pip install --quiet --disable-pip-version-check "moto[server]"
fi
if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Chromium for the browser test ..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

# The end-to-end tests run the built binaries: build them first, once, with the tests.
cargo build --workspace --bins --tests
cargo test --workspace --no-fail-fast

cd frontend
if [ "${CI:-}" = true ] || [ ! -d node_modules ]; then
    npm ci --no-audit --no-fund
fi
npm run lint
npm run typecheck
npm test
npm run build
npm run e2e
