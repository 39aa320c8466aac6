#!/usr/bin/env bash
# Builds the hydration bundle into $TARGET/site:
#   pkg/awoooi.js, pkg/awoooi_bg.wasm (wasm-bindgen), pkg/awoooi.css, plus public/.
#   scripts/build-ui.sh [--release]
# The server and the WASM must come from the same profile (see BUILD notes in BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
profile=debug
flags=()
if [ "${1:-}" = "--release" ]; then
  profile=wasm-release
  flags=(--profile wasm-release)
fi
cargo build -p frontend --target wasm32-unknown-unknown "${flags[@]}"
site="$TARGET_DIR/site"
mkdir -p "$site/pkg"
wasm-bindgen --target web --no-typescript --out-dir "$site/pkg" --out-name awoooi \
  "$TARGET_DIR/wasm32-unknown-unknown/$profile/frontend.wasm"
cp style/main.css "$site/pkg/awoooi.css"
if [ -d public ] && [ -n "$(ls -A public)" ]; then cp -r public/. "$site/"; fi
echo "UI assets in $site" >&2
