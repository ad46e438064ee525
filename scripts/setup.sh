#!/usr/bin/env bash
# Installs what building, running and testing need, skipping whatever is already there at the
# right version. Sourced by run.sh, test.sh and bench.sh; each `ensure_*` is idempotent.
# Versions: see ../shared/TOOLCHAIN.md for why these and not others.

TRUNK_VERSION=0.21.14
BINARYEN_VERSION=132
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
export PATH="$HOME/.cargo/bin:$TOOLS/npm/node_modules/.bin:$PATH"

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }

ensure_wasm_target() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
}

ensure_trunk() {
  if [ "$(trunk --version 2>/dev/null)" != "trunk $TRUNK_VERSION" ]; then
    say "installing trunk $TRUNK_VERSION (takes several minutes once)"
    cargo install trunk --version "$TRUNK_VERSION" --locked
  fi
}

# The wasm-bindgen CLI must be exactly the version of the wasm-bindgen crate in Cargo.lock.
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock"
}

ensure_wasm_bindgen() {
  local want
  want="$(wasm_bindgen_version)"
  if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $want" ]; then
    say "installing wasm-bindgen-cli $want (takes a few minutes once)"
    # Not --locked: its lockfile pins a yanked crate (see TOOLCHAIN.md).
    cargo install wasm-bindgen-cli --version "$want"
  fi
}

ensure_wasm_opt() {
  if ! wasm-opt --version 2>/dev/null | grep -q "version $BINARYEN_VERSION"; then
    say "installing wasm-opt (binaryen $BINARYEN_VERSION) from npm into .tools/npm"
    mkdir -p "$TOOLS/npm"
    npm install --prefix "$TOOLS/npm" --no-audit --no-fund "binaryen@$BINARYEN_VERSION" >&2
  fi
}

ensure_chromium() {
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    say "installing chromium and chromedriver from Debian"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver
  fi
}

# PostgreSQL's server binaries, for the tests of the PostgreSQL store: each test starts a
# throwaway server of its own (initdb in a temporary folder), so the system cluster Debian creates
# is never used and may stay down.
ensure_postgres() {
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    say "installing PostgreSQL from Debian"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql
  fi
}

# Redis (the bus between server nodes) and HAProxy (the balancer in front of them), for the
# cluster tests and `make cluster`: each test starts its own on loopback; the system services
# Debian may create are never used.
ensure_cluster_tools() {
  if ! command -v redis-server >/dev/null 2>&1 \
     || ! { command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ]; }; then
    say "installing Redis and HAProxy from Debian"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server haproxy
  fi
}

# A virtualenv in .tools/venv with the pinned test requirements; reinstalled when they change.
ensure_python() {
  local req="$ROOT/tests/e2e/requirements.txt" venv="$TOOLS/venv"
  local stamp="$venv/.requirements"
  if [ ! -x "$venv/bin/python" ] || ! cmp -s "$req" "$stamp"; then
    say "installing the end-to-end test requirements into .tools/venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
    cp "$req" "$stamp"
  fi
}

# Everything the client build needs, and the crates for offline builds.
ensure_client_tools() {
  ensure_wasm_target
  ensure_trunk
  ensure_wasm_bindgen
  ensure_wasm_opt
  (cd "$ROOT" && cargo fetch --locked >/dev/null)
}

build_client() {
  say "building the web client (release)"
  (cd "$ROOT" && trunk build --release --offline)
}

# The peers the benchmark compares with (socket.io with its Redis adapter, ws), from npm, into
# bench/peers/node_modules.
ensure_bench_peers() {
  local peers="$ROOT/bench/peers"
  if [ ! -d "$peers/node_modules/socket.io" ] || [ ! -d "$peers/node_modules/ws" ] \
     || [ ! -d "$peers/node_modules/@socket.io/redis-adapter" ] \
     || [ "$peers/package-lock.json" -nt "$peers/node_modules/.package-lock.json" ]; then
    say "installing the benchmark's peer servers (socket.io, ws) from npm"
    (cd "$peers" && npm ci --no-audit --no-fund >&2)
  fi
}

# What the browser tests inject into pages (axe-core), from npm, into tests/e2e/node_modules.
ensure_e2e_npm() {
  local dir="$ROOT/tests/e2e"
  if [ ! -f "$dir/node_modules/axe-core/axe.min.js" ] \
     || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    say "installing the browser tests' axe-core from npm"
    (cd "$dir" && npm ci --no-audit --no-fund >&2)
  fi
}
