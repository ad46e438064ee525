#!/usr/bin/env bash
# Formatting and clippy, native and wasm, warnings as errors.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"
ensure_wasm_target
cargo fmt --all -- --check
cargo clippy --locked -p shared -p backend -p bench -p frontend --all-targets -- -D warnings
cargo clippy --locked -p frontend --target wasm32-unknown-unknown --all-targets -- -D warnings
