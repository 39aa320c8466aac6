#!/usr/bin/env bash
# Privacy Shield benchmark (BENCHMARKS.md): throughput on a generated 10 MB log corpus with
# criterion, side by side with Microsoft Presidio (NoOpNlpEngine, same entity types) on the
# same lines, and recall/precision of both on a labelled subset.
#   scripts/bench-shield.sh [MEGABYTES] [SUBSET_LINES]
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
megabytes=${1:-10}
subset=${2:-5000}
work="$TARGET_DIR/shield-bench"
venv="$TARGET_DIR/bench-venv"
mkdir -p "$work"

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import presidio_analyzer' 2>/dev/null; then
  echo "installing presidio-analyzer into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q presidio-analyzer presidio-anonymizer
fi

python3 scripts/shield-bench/corpus.py "$work" "$megabytes"
head -n "$subset" "$work/corpus.txt" >"$work/subset.txt"

AWOOOI_SHIELD_CORPUS="$work/corpus.txt" cargo bench -q -p engine --bench shield >"$work/criterion.log" 2>&1
cargo build -q --release -p engine --example shield_spans
"$TARGET_DIR/release/examples/shield_spans" <"$work/subset.txt" >"$work/shield.jsonl"

# Presidio's URL recogniser tries to download the public suffix list: no network here, so it
# falls back to its bundled snapshot after logging the failure.
"$venv/bin/python" scripts/shield-bench/presidio_bench.py "$work/corpus.txt" "$subset" \
  "$work/presidio.jsonl" 2>"$work/presidio.log" >"$work/presidio.json"

python3 - "$TARGET_DIR" "$work" "$subset" <<'PY'
import json, subprocess, sys
target, work, subset = sys.argv[1], sys.argv[2], sys.argv[3]
def mean_ns(bench):
    with open(f"{target}/criterion/shield/{bench}/new/estimates.json") as f:
        return json.load(f)["mean"]["point_estimate"]
size = sum(1 for _ in open(f"{work}/corpus.txt", "rb").read())
mbps = lambda ns: size / (ns / 1e9) / 1e6
score = lambda preds: json.loads(subprocess.check_output(
    ["python3", "scripts/shield-bench/score.py", f"{work}/labels.jsonl", preds, subset]))
presidio = json.load(open(f"{work}/presidio.json"))
base, find, redact = mean_ns("baseline_line_split"), mean_ns("find_per_line"), mean_ns("redact_per_line")
p_mbps = presidio["bytes_per_second"] / 1e6
s, p = score(f"{work}/shield.jsonl"), score(f"{work}/presidio.jsonl")
print(f"corpus: {size/1e6:.1f} MB; labelled subset: {subset} lines, {s['labels']} values")
print(f"| engine | MB/s (1 core) | vs Presidio | recall | precision |")
print(f"|---|---|---|---|---|")
print(f"| baseline: split lines, touch every byte | {mbps(base):.0f} | | | |")
print(f"| AWOOOI Shield find | {mbps(find):.1f} | {mbps(find)/p_mbps:.0f}x | {s['recall']:.4f} | {s['precision']:.4f} |")
print(f"| AWOOOI Shield redact (find + labels) | {mbps(redact):.1f} | {mbps(redact)/p_mbps:.0f}x | | |")
print(f"| Presidio analyze (NoOpNlpEngine) | {p_mbps:.2f} | 1x | {p['recall']:.4f} | {p['precision']:.4f} |")
PY
