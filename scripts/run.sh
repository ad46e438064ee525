#!/usr/bin/env bash
# Sets up what is missing, builds the client and the server in release mode, and runs the app
# on 127.0.0.1:8080 with its SQLite database in data/. Extra arguments go to the server
# (see `cargo run -p backend -- --help`).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"
ensure_client_tools
build_client
say "building the server (release)"
cargo build --release --locked -p backend
mkdir -p data
say "starting: open http://127.0.0.1:8080/ (Ctrl-C stops it)"
exec target/release/backend --static-dir dist --database data/chat.db "$@"
