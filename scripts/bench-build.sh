#!/usr/bin/env bash
# Measures build costs on this machine (the figures in BENCHMARKS.md):
# cold and incremental builds of the server and of the WASM bundle, and the release WASM size.
# Cold builds use a scratch target directory; dependencies must already be downloaded.
#   scripts/bench-build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export CARGO_TARGET_DIR="$scratch/target"
export CARGO_TERM_COLOR=never

timed() {
  local label=$1; shift
  local start=$SECONDS
  "$@" >"$scratch/log" 2>&1 || { cat "$scratch/log" >&2; exit 1; }
  printf '| %s | %ss |\n' "$label" "$((SECONDS - start))"
}

echo "| Step | Wall time |"
echo "|---|---|"
timed "cold \`cargo build -p server\` (debug)" cargo build -p server --bin awoooi
touch app/src/routes/dashboard.rs
timed "incremental server rebuild after touching one \`app\` file" cargo build -p server --bin awoooi
touch server/src/edge/http.rs
timed "incremental server rebuild after touching one \`server\` file" cargo build -p server --bin awoooi
timed "cold WASM build (debug, \`cargo build -p frontend --target wasm32-unknown-unknown\`)" \
  cargo build -p frontend --target wasm32-unknown-unknown
touch app/src/routes/dashboard.rs
timed "incremental WASM rebuild after touching one \`app\` file" \
  cargo build -p frontend --target wasm32-unknown-unknown
timed "release WASM build (\`--profile wasm-release\`: opt-level z, LTO, 1 CGU)" \
  cargo build -p frontend --target wasm32-unknown-unknown --profile wasm-release
mkdir -p "$scratch/pkg"
wasm-bindgen --target web --no-typescript --out-dir "$scratch/pkg" --out-name awoooi \
  "$CARGO_TARGET_DIR/wasm32-unknown-unknown/wasm-release/frontend.wasm"
wasm=$scratch/pkg/awoooi_bg.wasm
printf '\n| Release WASM (after wasm-bindgen) | bytes |\n|---|---|\n'
printf '| raw | %s |\n' "$(stat -c %s "$wasm")"
printf '| gzip -9 | %s |\n' "$(gzip -9 -c "$wasm" | wc -c)"
printf '| awoooi.js gzip -9 | %s |\n' "$(gzip -9 -c "$scratch/pkg/awoooi.js" | wc -c)"
