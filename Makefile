# The two commands of the README, and a few more. Each sets up what it needs first.
.PHONY: run test lint dev bench cluster cluster-stop help

help:
	@echo "make run   - set up, build, and run the app on http://127.0.0.1:8080"
	@echo "make test  - set up and run every test"
	@echo "make lint  - cargo fmt --check and clippy (native and wasm)"
	@echo "make dev   - run the backend for 'trunk serve' front-end development"
	@echo "make bench - benchmark against Socket.IO, a Node ws relay and the raw ceiling"
	@echo "make cluster - PostgreSQL, Redis, three nodes and HAProxy on http://127.0.0.1:8080 (Ctrl-C stops)"
	@echo "make cluster-stop - stop a cluster started in another shell"

run:
	@bash scripts/run.sh

test:
	@bash scripts/test.sh

lint:
	@bash scripts/lint.sh

# Backend on :8080 accepting the trunk dev server's origin; run `trunk serve` in another shell.
dev:
	@cargo run -p backend -- --allowed-origins http://127.0.0.1:8080,http://localhost:8080,http://127.0.0.1:3000,http://localhost:3000

bench:
	@bash scripts/bench.sh

cluster:
	@bash scripts/cluster.sh

cluster-stop:
	@bash scripts/cluster.sh stop
