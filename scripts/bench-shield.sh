#!/usr/bin/env bash
# Privacy Shield throughput (BENCHMARKS.md) on a generated 10 MB log: criterion for find and
# redact against a baseline that only splits lines, `awoooi redact`'s stream function timed
# with hyperfine as a one-shot process (cold automaton, as a user runs it), and Microsoft
# Presidio's analyze rate on the first lines of the same log. Accuracy is scored separately,
# on an independent labelled corpus: scripts/shield-eval.sh.
#   scripts/bench-shield.sh [MEGABYTES] [PRESIDIO_LINES]
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
megabytes=${1:-10}
presidio_lines=${2:-5000}
work="$TARGET_DIR/shield-bench"
venv="$TARGET_DIR/bench-venv"
mkdir -p "$work"

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import presidio_analyzer' 2>/dev/null; then
  echo "installing presidio-analyzer into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q presidio-analyzer presidio-anonymizer
fi
command -v hyperfine >/dev/null || { echo "hyperfine is needed (apt-get install hyperfine)" >&2; exit 1; }

python3 scripts/shield-bench/corpus.py "$work" "$megabytes"
head -n "$presidio_lines" "$work/corpus.txt" >"$work/presidio-lines.txt"

AWOOOI_SHIELD_CORPUS="$work/corpus.txt" cargo bench -q -p engine --bench shield >"$work/criterion.log" 2>&1
cargo build -q --release -p engine --example shield_redact
hyperfine --warmup 2 --runs 10 --export-json "$work/redact.json" \
  "$TARGET_DIR/release/examples/shield_redact <$work/corpus.txt >/dev/null" >&2
"$venv/bin/python" evals/shield/presidio_spans.py "$work/presidio-lines.txt" "$work/presidio.jsonl" \
  2>&1 | grep '^presidio:' >"$work/presidio.log"

python3 - "$TARGET_DIR" "$work" <<'PY'
import json, os, re, sys
target, work = sys.argv[1], sys.argv[2]
size = os.path.getsize(f"{work}/corpus.txt")
def mean_ns(bench):
    with open(f"{target}/criterion/shield/{bench}/new/estimates.json") as f:
        return json.load(f)["mean"]["point_estimate"]
mbps = lambda ns: size / (ns / 1e9) / 1e6
base, find, redact = mean_ns("baseline_line_split"), mean_ns("find_per_line"), mean_ns("redact_per_line")
cli = json.load(open(f"{work}/redact.json"))["results"][0]["mean"]
presidio = float(re.search(r"([0-9.]+) MB/s", open(f"{work}/presidio.log").read()).group(1))
print(f"log: {size/1e6:.1f} MB, {sum(1 for _ in open(f'{work}/corpus.txt', 'rb'))} lines")
print("| what | MB/s (1 core) | vs Presidio |")
print("|---|---|---|")
print(f"| baseline: split lines, touch every byte | {mbps(base):.0f} | |")
print(f"| Shield `find`, warm (criterion) | {mbps(find):.1f} | {mbps(find)/presidio:.0f}x |")
print(f"| Shield `redact`, warm (criterion) | {mbps(redact):.1f} | {mbps(redact)/presidio:.0f}x |")
print(f"| `awoooi redact` stream, one process per run (hyperfine) | {size/cli/1e6:.1f} | {size/cli/1e6/presidio:.0f}x |")
print(f"| Presidio `analyze` (NoOpNlpEngine, predefined recognizers) | {presidio:.2f} | 1x |")
PY
