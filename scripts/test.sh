#!/usr/bin/env bash
# Everything CI checks, in order: format, lints (host and WASM), all Rust tests (SQLite and
# PostgreSQL), the WASM build, and the Playwright suite in Chromium against a fresh server.
#
# Needs PostgreSQL reachable at $AWOOOI_TEST_PG_URL
# (default postgres://postgres@127.0.0.1:5432/postgres) with the right to CREATE DATABASE.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-always}

step() { printf '\n\033[1;35m==> [%4ss] %s\033[0m\n' "$SECONDS" "$*" >&2; }

step "setup"
scripts/setup.sh --e2e

step "deployment lint (Dockerfile, Helm chart, Alertmanager, Grafana)"
scripts/lint-deploy.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (host)"
cargo clippy --workspace --exclude frontend --all-targets -- -D warnings

step "cargo clippy (wasm32, hydrate)"
cargo clippy -p frontend --target wasm32-unknown-unknown -- -D warnings

step "Rust tests (SQLite and PostgreSQL)"
if command -v cargo-nextest >/dev/null; then
  cargo nextest run --workspace --exclude frontend --no-fail-fast
else
  cargo test --workspace --exclude frontend --no-fail-fast
fi

step "Privacy Shield on the labelled corpus (evals/shield)"
scripts/shield-eval.sh --shield-only

step "WASM bundle"
scripts/build-ui.sh

step "server binary"
cargo build -p server --bin awoooi

step "end-to-end (Playwright, Chromium)"
AWOOOI_BIN="$TARGET_DIR/debug/awoooi" AWOOOI_SITE_ROOT="$TARGET_DIR/site" end2end/run.sh

step "all checks passed"
