#!/usr/bin/env bash
# Starts a fresh AWOOOI demo server (new data dir, demo users) for the tracer bullet, then
# another fresh one for the Playwright suite.
#   AWOOOI_BIN=path/to/awoooi AWOOOI_SITE_ROOT=path/to/site end2end/run.sh [playwright args]
# With Playwright arguments (e.g. -g "a test name") the tracer bullet is skipped.
set -euo pipefail
: "${AWOOOI_BIN:?path to the awoooi binary}"
: "${AWOOOI_SITE_ROOT:?path to the built site (scripts/build-ui.sh)}"
AWOOOI_BIN=$(realpath "$AWOOOI_BIN")
AWOOOI_SITE_ROOT=$(realpath "$AWOOOI_SITE_ROOT")
cd "$(dirname "$0")"
export AWOOOI_DEMO_PASSWORD="e2e-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"

server=""
data_dir=""
receiver=""
receiver_dir=$(mktemp -d)
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# A webhook receiver for the Settings page's channels (one that answers, one that is down).
receiver_port=$(free_port)
python3 receiver.py "$receiver_port" "$receiver_dir/received.jsonl" &
receiver=$!
export AWOOOI_E2E_RECEIVED="$receiver_dir/received.jsonl"
cat >"$receiver_dir/awoooi.toml" <<TOML
[notifications.retry]
attempts = 2
base_ms = 200
max_ms = 200
poll_ms = 100
[[notifications.channels]]
name = "capture"
kind = "webhook"
url = "http://127.0.0.1:$receiver_port/hook"
secret = "e2e-webhook-secret"
[[notifications.channels]]
name = "unreachable"
kind = "webhook"
url = "http://127.0.0.1:9/nobody"
[[notifications.routes]]
events = ["APPROVAL_PENDING"]
channels = ["capture"]
TOML
stop_receiver() {
  [ -n "$receiver" ] && kill "$receiver" 2>/dev/null || true
  rm -rf "$receiver_dir"
}
stop_server() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  [ -n "$data_dir" ] && rm -rf "$data_dir"
  server=""
  data_dir=""
}
trap 'stop_server; stop_receiver' EXIT

# Starts `awoooi serve --demo` on a free port with a new data dir; sets AWOOOI_E2E_URL.
start_server() {
  data_dir=$(mktemp -d)
  local port
  port=$(free_port)
  export AWOOOI_E2E_URL="http://127.0.0.1:$port"
  "$AWOOOI_BIN" serve --demo --bind "127.0.0.1:$port" --data-dir "$data_dir" \
    --site-root "$AWOOOI_SITE_ROOT" --config "$receiver_dir/awoooi.toml" >"$data_dir/server.log" 2>&1 &
  server=$!
  for _ in $(seq 1 100); do
    if curl -fsS "$AWOOOI_E2E_URL/readyz" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$server" 2>/dev/null; then cat "$data_dir/server.log" >&2; exit 1; fi
    sleep 0.2
  done
  curl -fsS "$AWOOOI_E2E_URL/readyz" >/dev/null || { cat "$data_dir/server.log" >&2; exit 1; }
}

server_log() {
  echo "---- server log ----" >&2
  tail -n 100 "$data_dir/server.log" >&2
}

status=0
if [ "$#" = 0 ]; then
  # The tracer bullet, against a freshly started demo server (webhook, GraphQL, MCP).
  start_server
  "$AWOOOI_BIN" tracer-bullet --url "$AWOOOI_E2E_URL" --order symptoms-first || { status=$?; server_log; }
  stop_server
fi

start_server
npx playwright test "$@" || { status=$?; server_log; }
exit "$status"
