#!/usr/bin/env bash
# Alert-storm benchmark (BENCHMARKS.md): K independent databases fail at once and every
# service in their blast radii alerts for ten (simulated) minutes; prints compression, purity
# and ingest throughput against GET /healthz in the same run. Two topologies: 50 services
# (5 roots) and 20,000 services (50 roots), and the first again correlated by service only.
#   scripts/bench-storm.sh [extra flags for both runs, e.g. --database-url postgres://…]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p server --example storm
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
echo "== 50 services, 5 independent roots"
"$TARGET_DIR/release/examples/storm" --services 50 --roots 5 --rounds 60 "$@"
echo
echo "== the same storm correlated by service only (no topology), for comparison"
"$TARGET_DIR/release/examples/storm" --services 50 --roots 5 --rounds 60 --without-topology "$@"
echo
echo "== 20,000 services, 50 independent roots"
"$TARGET_DIR/release/examples/storm" --services 20000 --roots 50 --rounds 60 "$@"
