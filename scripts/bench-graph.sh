#!/usr/bin/env bash
# GraphRAG benchmark (BENCHMARKS.md): blast radius + root causes at depth 3 on a synthetic
# topology (20,000 services, 200,000 edges), AWOOOI (criterion) vs networkx on the same
# 1,000 queries in the same run.
#   scripts/bench-graph.sh [SERVICES] [EDGES] [QUERIES]
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
work="$TARGET_DIR/graph-bench"
venv="$TARGET_DIR/bench-venv"
mkdir -p "$work"
if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv"; fi
"$venv/bin/python" -c 'import networkx' 2>/dev/null || "$venv/bin/pip" install -q networkx
"$venv/bin/python" scripts/graph-bench/graph.py "$work" "${1:-20000}" "${2:-200000}" "${3:-1000}" \
  >"$work/networkx.json"
AWOOOI_GRAPH_DIR="$work" cargo bench -q -p engine --bench topology >"$work/criterion.log" 2>&1
python3 - "$TARGET_DIR" "$work" <<'PY'
import json, sys
target, work = sys.argv[1], sys.argv[2]
nx = json.load(open(f"{work}/networkx.json"))
est = json.load(open(f"{target}/criterion/topology/blast_radius_and_root_causes_x1000/new/estimates.json"))
ours_us = est["mean"]["point_estimate"] / nx["queries"] / 1e3
print(f"graph: {nx['services']} services, {nx['edges']} edges; {nx['queries']} queries at depth 3")
print(f"average reached per call: {nx['affected_total']/nx['queries']:.0f} dependents, "
      f"{nx['causes_total']/nx['queries']:.1f} root causes")
print(f"| engine | per call (blast radius + root causes) | vs networkx |")
print(f"|---|---|---|")
print(f"| AWOOOI engine | {ours_us:.1f} µs | {nx['networkx_us_per_call']/ours_us:.0f}x |")
print(f"| networkx | {nx['networkx_us_per_call']:.1f} µs | 1x |")
PY
