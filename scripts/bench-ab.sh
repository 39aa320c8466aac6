#!/usr/bin/env bash
# Two server builds side by side (BENCHMARKS.md), for machines whose speed drifts from run to
# run: both release servers are seeded alike (1,000 incidents), pinned to CPU 0 and idle in
# turn, and wrk (CPU 1) alternates between them, round after round: `{ __typename }`,
# `incidents(first: 20)` and the SSR incidents page, req/s per round and server.
#   scripts/bench-ab.sh BIN_A BIN_B [ROUNDS] [SECONDS]
# BIN_A and BIN_B are `awoooi` binaries (e.g. target/release/awoooi of two checkouts), or the
# same binary twice with A_GRAPHQL / B_GRAPHQL: extra `[graphql]` lines for that server
# (e.g. B_GRAPHQL='read_cache_ms = 0' measures the read cache against none).
# Build the two checkouts in separate target directories (or check with `cmp` that the
# binaries differ): cargo can reuse one checkout's compiled workspace crates for the other.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 BIN_A BIN_B [ROUNDS] [SECONDS]" >&2; exit 2; }
bin_a=$(realpath "$1")
bin_b=$(realpath "$2")
cd "$(dirname "$0")/.."
rounds=${3:-3}
seconds=${4:-8}
command -v wrk >/dev/null || { sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo; $sudo apt-get install -y -qq wrk >/dev/null; }
work=$(mktemp -d)
trap 'kill $(cat "$work"/*/pid 2>/dev/null) 2>/dev/null; rm -rf "$work"' EXIT

start() { # start BIN PORT [GRAPHQL_LINES]: a seeded server; its pid, token and cookie under $work/PORT
  local bin=$1 port=$2 base="http://127.0.0.1:$2" token
  mkdir -p "$work/$port"
  printf '[auth]\ncredential_cache_seconds = 2\n[graphql]\nrate_per_minute = 0\n%s\n' "${3:-}" \
    > "$work/$port/awoooi.toml"
  AWOOOI_DEMO_PASSWORD=bench-password RUST_LOG=warn taskset -c 0 "$bin" serve --demo \
    --bind "127.0.0.1:$port" --data-dir "$work/$port" --site-root "$work/site" \
    --config "$work/$port/awoooi.toml" > "$work/$port/log" 2>&1 &
  echo $! > "$work/$port/pid"
  for _ in $(seq 100); do curl -fs "$base/healthz" >/dev/null && break; sleep 0.2; done
  token=$(curl -fs "$base/graphql" -H 'content-type: application/json' \
    -d '{"query":"mutation { login(username: \"admin\", password: \"bench-password\") { token } }"}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["login"]["token"])')
  echo "$token" > "$work/$port/token"
  scripts/bench-seed.sh "$base" "$token"
  curl -fs -o /dev/null -D - "$base/auth/login" -d 'username=admin&password=bench-password' \
    | awk -F'[ ;]' 'tolower($1) == "set-cookie:" { print $2 }' > "$work/$port/cookie"
}

start "$bin_a" 31001 "${A_GRAPHQL:-}"
start "$bin_b" 31002 "${B_GRAPHQL:-}"
echo "A = $bin_a (port 31001), B = $bin_b (port 31002); waiting 40 s for the work seeding started"
sleep 40
rps() { awk '/Requests\/sec/ { print $2 }'; }
list='{"query":"query Incidents($first: Int!) { incidents(first: $first) { totalCount pageInfo { hasNextPage endCursor } edges { node { id title severity status service createdAt alertCount mergedInto assignee acknowledgedBy } } } }","variables":{"first":20}}'
echo "| round | build | { __typename } | incidents(first: 20) | SSR /incidents |"
echo "|---|---|---|---|---|"
for round in $(seq "$rounds"); do
  for port in 31001 31002; do
    base="http://127.0.0.1:$port"
    token=$(cat "$work/$port/token")
    cookie=$(cat "$work/$port/cookie")
    bare=$(TOKEN=$token BODY='{"query":"{ __typename }"}' taskset -c 1 \
      wrk -t1 -c16 -d"${seconds}s" -s scripts/bench-post.lua "$base/graphql" | rps)
    incidents=$(TOKEN=$token BODY=$list taskset -c 1 \
      wrk -t1 -c16 -d"${seconds}s" -s scripts/bench-post.lua "$base/graphql" | rps)
    ssr=$(taskset -c 1 wrk -t1 -c16 -d"${seconds}s" -H "Cookie: $cookie" "$base/incidents" | rps)
    build=A; [ "$port" = 31002 ] && build=B
    echo "| $round | $build | $bare | $incidents | $ssr |"
  done
done
