#!/usr/bin/env bash
# Runs every test of acidizer: unit, contract (SQLite, DynamoDB on moto, the Lambda binary), durability and
# layout tests. Installs the DynamoDB emulator (moto) when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c 'import moto.moto_server.werkzeug_app, werkzeug' 2>/dev/null; then
    echo "installing the DynamoDB emulator (moto) ..."
    python3 -m pip install --quiet --disable-pip-version-check "moto[server]"
fi

# The end-to-end tests run the built binaries: build them first, once, with the tests.
cargo build --workspace --bins --tests
cargo test --workspace --no-fail-fast
