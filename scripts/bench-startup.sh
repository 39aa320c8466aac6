#!/usr/bin/env bash
# Start-up benchmark (BENCHMARKS.md): `awoooi serve` (release, SQLite, a new data dir) with
# a generated topology of SERVICES services and EDGES edges and the simulated cluster made
# from it; prints the seconds to the first 200 from /healthz and from /readyz, beside
# networkx reading and building the same graph in the same run.
#   scripts/bench-startup.sh [SERVICES] [EDGES] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
services=${1:-20000}
edges=${2:-212000}
runs=${3:-3}
work="$TARGET_DIR/startup-bench"
venv="$TARGET_DIR/bench-venv"
mkdir -p "$work"
if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv"; fi
"$venv/bin/python" -c 'import networkx, yaml' 2>/dev/null || "$venv/bin/pip" install -q networkx pyyaml
cargo build -q --release -p server --bin awoooi
"$venv/bin/python" scripts/graph-bench/graph.py "$work" "$services" "$edges" 1 >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work/data"' EXIT
# Seconds from the start until `path` first answers 200 (gives up after 600 s).
wait_for() {
  local path=$1 started=$2
  while :; do
    if curl -fs -o /dev/null "http://127.0.0.1:$port$path"; then break; fi
    if ! kill -0 "$server" 2>/dev/null; then echo "the server exited; see $work/server.log" >&2; exit 1; fi
    if (( $(date +%s%N) - started > 600000000000 )); then echo "no 200 from $path in 600 s" >&2; exit 1; fi
    sleep 0.02
  done
  python3 -c "print(f'{($(date +%s%N) - $started) / 1e9:.2f}')"
}
echo "topology: $services services, $edges edges ($(du -h "$work/topology.yaml" | cut -f1))"
for run in $(seq "$runs"); do
  rm -rf "$work/data"
  started=$(date +%s%N)
  env -u DATABASE_URL -u AWOOOI_DATABASE_URL -u AWOOOI_CONFIG "$TARGET_DIR/release/awoooi" --data-dir "$work/data" serve --bind "127.0.0.1:$port" \
    --topology "$work/topology.yaml" >"$work/server.log" 2>&1 &
  server=$!
  healthz=$(wait_for /healthz "$started")
  readyz=$(wait_for /readyz "$started")
  baseline=$("$venv/bin/python" scripts/graph-bench/load.py "$work/topology.yaml")
  echo "run $run: /healthz after ${healthz} s, /readyz after ${readyz} s; networkx: $baseline"
  kill "$server"
  wait "$server" 2>/dev/null || true
  server=""
done
