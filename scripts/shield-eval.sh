#!/usr/bin/env bash
# Privacy Shield accuracy on the independent labelled corpus (evals/shield/), side by side with
# Microsoft Presidio on the same records: recall and partial leaks per sensitive kind, false
# positives per look-alike kind, consistency. Prints the tables of BENCHMARKS.md and fails when
# the Shield misses a target.
#   scripts/shield-eval.sh               # Shield and Presidio (installs Presidio once, cached)
#   scripts/shield-eval.sh --shield-only # the Shield alone (CI)
#   scripts/shield-eval.sh --holdout     # on the first held-out corpus (evals/shield/holdout/),
#                                        # prints the same tables, reports targets, never fails
#   scripts/shield-eval.sh --corpus F    # on any corpus in the same format (e.g. holdout2/)
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
work="$TARGET_DIR/shield-eval"
venv="$TARGET_DIR/bench-venv"
corpus=evals/shield/corpus.jsonl
shield_only=false
holdout=false
while [ $# -gt 0 ]; do
  case "$1" in
    --shield-only) shield_only=true ;;
    --holdout) holdout=true; corpus=evals/shield/holdout/holdout.jsonl; work="$work/holdout" ;;
    --corpus)
      [ -f "${2:-}" ] || { echo "--corpus needs a corpus file (got '${2:-}')" >&2; exit 2; }
      holdout=true; corpus=$2; work="$work/$(basename "$2" .jsonl)"; shift ;;
    *) echo "unknown option $1 (use --shield-only, --holdout, --corpus FILE)" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$work"

python3 -c 'import json,sys
with open(sys.argv[2], "w", encoding="utf-8") as out:
    for line in open(sys.argv[1], encoding="utf-8"):
        out.write(json.loads(line)["text"] + "\n")' "$corpus" "$work/texts.txt"

echo "building the Shield's span printer" >&2
cargo build -q -p engine --example shield_spans
"$TARGET_DIR/debug/examples/shield_spans" <"$work/texts.txt" >"$work/shield.jsonl"
tools=("AWOOOI Shield=$work/shield.jsonl")

if ! $shield_only; then
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import presidio_analyzer' 2>/dev/null; then
    echo "installing presidio-analyzer into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q presidio-analyzer presidio-anonymizer
  fi
  echo "running Presidio on $(wc -l <"$work/texts.txt") records" >&2
  # Presidio's URL recogniser tries to download the public suffix list: no network here, so
  # it falls back to its bundled snapshot after logging the failure (kept in presidio.log).
  "$venv/bin/python" evals/shield/presidio_spans.py "$work/texts.txt" "$work/presidio.jsonl" \
    2>"$work/presidio.log" || { tail -20 "$work/presidio.log" >&2; exit 1; }
  grep '^presidio:' "$work/presidio.log" >&2
  tools+=("Presidio=$work/presidio.jsonl")
fi

if $holdout; then
  python3 evals/shield/score.py "$corpus" "${tools[@]}" || true
else
  python3 evals/shield/score.py "$corpus" "${tools[@]}"
fi
