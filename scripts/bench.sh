#!/usr/bin/env bash
# The benchmark: builds everything in release mode, then runs every scenario against our server,
# a Node ws relay, a Socket.IO server and the raw ceiling, then clusters of three nodes (ours on
# PostgreSQL with the Redis bus, Socket.IO with its Redis adapter) behind HAProxy, and writes the
# figures into docs/benchmarks.md, then times searches over a million stored messages. Takes
# 10-15 minutes. Extra arguments go to `bench suite` (e.g. --only ours,ws).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"
ensure_client_tools
ensure_postgres
ensure_cluster_tools
ensure_bench_peers
build_client
say "building the server, the load generator and the search benchmark (release)"
cargo build --release --locked -p backend -p bench --bins --example search_bench
say "running the benchmark (about 10 minutes)"
target/release/bench suite --backend target/release/backend --peers bench/peers --dist dist \
  --report docs/benchmarks.md "$@"
ensure_python
say "abuse: other users' latency under a login flood and a message flood, memory after a burst"
"$TOOLS/venv/bin/python" bench/flood.py --backend target/release/backend --report docs/benchmarks.md
say "search: index size and query latency over 1,000,000 English and Chinese messages (a few minutes)"
target/release/examples/search_bench --messages 1000000 --report docs/benchmarks.md
