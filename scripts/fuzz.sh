#!/usr/bin/env bash
# Runs every fuzz target for FUZZ_SECONDS (default 300) each, two at a time, seeded from
# fuzz/seeds/<target>. Needs cargo-fuzz (`cargo install cargo-fuzz`); RUSTC_BOOTSTRAP lets it
# use the sanitizer flags on the stable toolchain. Exit status is non-zero if any target
# found a crash (its input is saved under fuzz/artifacts/<target>/).
#   scripts/fuzz.sh [target…]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
export RUSTC_BOOTSTRAP=1
seconds=${FUZZ_SECONDS:-300}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then targets=(alertmanager grafana generic shield); fi
cargo fuzz build
status=0
run() {
  mkdir -p "corpus/$1"
  if cargo fuzz run "$1" "corpus/$1" "seeds/$1" -- -max_total_time="$seconds" -rss_limit_mb=2048 \
      >"../target/fuzz-$1.log" 2>&1; then
    echo "$1: no crash in ${seconds}s ($(grep -ao 'Done [0-9]* runs' "../target/fuzz-$1.log" | tail -1))"
  else
    echo "$1: FAILED, see target/fuzz-$1.log and fuzz/artifacts/$1/"
    return 1
  fi
}
mkdir -p ../target
for ((i = 0; i < ${#targets[@]}; i += 2)); do
  run "${targets[$i]}" & first=$!
  if [ $((i + 1)) -lt ${#targets[@]} ]; then run "${targets[$((i + 1))]}" & second=$!; else second=""; fi
  wait "$first" || status=1
  if [ -n "$second" ]; then wait "$second" || status=1; fi
done
exit $status
