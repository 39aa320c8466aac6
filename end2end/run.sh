#!/usr/bin/env bash
# Starts a fresh AWOOOI server (new data dir, demo users) and runs the Playwright suite.
#   AWOOOI_BIN=path/to/awoooi AWOOOI_SITE_ROOT=path/to/site end2end/run.sh
set -euo pipefail
: "${AWOOOI_BIN:?path to the awoooi binary}"
: "${AWOOOI_SITE_ROOT:?path to the built site (scripts/build-ui.sh)}"
AWOOOI_BIN=$(realpath "$AWOOOI_BIN")
AWOOOI_SITE_ROOT=$(realpath "$AWOOOI_SITE_ROOT")
cd "$(dirname "$0")"

data_dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export AWOOOI_DEMO_PASSWORD="e2e-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export AWOOOI_E2E_URL="http://127.0.0.1:$port"

"$AWOOOI_BIN" serve --demo --bind "127.0.0.1:$port" --data-dir "$data_dir" \
  --site-root "$AWOOOI_SITE_ROOT" >"$data_dir/server.log" 2>&1 &
server=$!
cleanup() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$data_dir"
}
trap cleanup EXIT

for _ in $(seq 1 100); do
  if curl -fsS "$AWOOOI_E2E_URL/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then cat "$data_dir/server.log" >&2; exit 1; fi
  sleep 0.2
done
curl -fsS "$AWOOOI_E2E_URL/readyz" >/dev/null || { cat "$data_dir/server.log" >&2; exit 1; }

status=0
# The tracer bullet first, against the fresh demo server (webhook, GraphQL, MCP).
if [ "$#" = 0 ]; then
  "$AWOOOI_BIN" tracer-bullet --url "$AWOOOI_E2E_URL" || status=$?
fi
npx playwright test "$@" || status=$?
if [ "$status" != 0 ]; then
  echo "---- server log ----" >&2
  tail -n 100 "$data_dir/server.log" >&2
fi
exit "$status"
