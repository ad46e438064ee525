#!/usr/bin/env bash
# Sets up what is missing and runs every test: native tests of shared and backend (the store's
# on SQLite and on throwaway PostgreSQL servers), the frontend's wasm-bindgen tests in headless
# Chromium, and the end-to-end tests (a real server, real Chromium, and a plain Python WebSocket
# client).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"
ensure_client_tools
ensure_chromium
ensure_postgres
ensure_cluster_tools
ensure_python
ensure_e2e_npm

ensure_bench_peers

say "native tests: shared, backend, bench, and the client's pure logic"
cargo test --locked -p shared -p backend -p bench -p frontend

say "frontend tests in headless Chromium"
CHROMEDRIVER="$(command -v chromedriver)" WASM_BINDGEN_TEST_TIMEOUT=180 \
  cargo test --locked -p frontend --target wasm32-unknown-unknown

build_client
say "end-to-end tests"
cargo build --locked -p backend
BACKEND_BIN="$ROOT/target/debug/backend" STATIC_DIR="$ROOT/dist" \
  "$TOOLS/venv/bin/python" -m pytest -q "$ROOT/tests/e2e"
say "benchmark smoke run (tiny counts: checks the harness, measures nothing)"
cargo build --locked -p bench
target/debug/bench suite --quick --backend target/debug/backend --peers bench/peers --dist dist >/dev/null
"$TOOLS/venv/bin/python" bench/flood.py --quick --backend target/debug/backend >/dev/null
cargo run --locked -q -p backend --example search_bench -- --messages 2000 --queries 5 >/dev/null
say "all tests passed"
