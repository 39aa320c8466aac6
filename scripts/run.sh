#!/usr/bin/env bash
# One command to run AWOOOI locally: embedded SQLite, demo users, UI and GraphQL on
# http://127.0.0.1:3000. Extra arguments go to `awoooi` (e.g. --bind 127.0.0.1:4000).
#   scripts/run.sh [--release] [awoooi flags…]
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
scripts/setup.sh
release=()
bin_dir=debug
if [ "${1:-}" = "--release" ]; then
  shift
  release=(--release)
  bin_dir=release
  scripts/build-ui.sh --release
else
  scripts/build-ui.sh
fi
cargo build -p server --bin awoooi "${release[@]}"
# Semantic retrieval in the demo: the model setup.sh installed (unless one is configured).
export AWOOOI_KM_EMBEDDINGS_MODEL="${AWOOOI_KM_EMBEDDINGS_MODEL:-${AWOOOI_MODELS:-$HOME/.cache/awoooi/models}/all-minilm-l6-v2}"
exec "$TARGET_DIR/$bin_dir/awoooi" serve --demo --site-root "$TARGET_DIR/site" "$@"
