#!/usr/bin/env bash
# Shows that a login for an unknown user and one with a wrong password cost the same time
# (both pay one Argon2 verification). Starts its own server on a scratch database.
#   scripts/bench-login.sh        (needs hyperfine: apt-get install hyperfine)
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
cargo build -q --release -p server --bin awoooi
data=$(mktemp -d)
port=3917
AWOOOI_DEMO_PASSWORD=bench-password "$TARGET_DIR/release/awoooi" serve --demo \
  --bind "127.0.0.1:$port" --data-dir "$data" >"$data/log" 2>&1 &
server=$!
trap 'kill $server; rm -rf "$data"' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done
body() { printf '{"query":"mutation{login(username:\\"%s\\",password:\\"%s\\"){token}}"}' "$1" "$2"; }
echo "$(body alice wrong-password)" >"$data/wrong.json"
echo "$(body mallory bench-password)" >"$data/unknown.json"
echo "$(body alice bench-password)" >"$data/right.json"
hyperfine -N --warmup 5 --runs 50 \
  -n "wrong password (alice)" "curl -s -H content-type:application/json --data @$data/wrong.json http://127.0.0.1:$port/graphql" \
  -n "unknown user (mallory)" "curl -s -H content-type:application/json --data @$data/unknown.json http://127.0.0.1:$port/graphql" \
  -n "right password (alice)" "curl -s -H content-type:application/json --data @$data/right.json http://127.0.0.1:$port/graphql"
