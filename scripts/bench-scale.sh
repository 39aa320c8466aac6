#!/usr/bin/env bash
# Scale benchmarks (BENCHMARKS.md) against one release server pinned to CPU 0, load from CPU 1:
#   1. GraphQL read throughput: `incidents(first: 20)` against a bare `{ __typename }` (wrk);
#   2. SSR: the incidents page with 1,000 incidents, renders per second on the one core,
#      against GET /healthz on the same server, and one page's latency on one connection;
#   3. subscription fan-out: N graphql-ws subscribers, memory per idle connection and the
#      delivery latency of one event to all, against one subscriber (server/examples/fanout.rs).
#   scripts/bench-scale.sh [--clients 10000] [--seconds 15] [--database-url postgres://…]
#                          [--credential-cache-seconds N] [--no-fanout]
set -euo pipefail
cd "$(dirname "$0")/.."
clients=10000
seconds=15
database_url=""
credential_cache=2
fanout=1
while [ $# -gt 0 ]; do
  case "$1" in
    --clients) clients=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --database-url) database_url=$2; shift 2 ;;
    --credential-cache-seconds) credential_cache=$2; shift 2 ;;
    --no-fanout) fanout=0; shift ;;
    *) echo "unknown flag $1" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo; $sudo apt-get install -y -qq wrk >/dev/null; }

ulimit -n "$(ulimit -Hn)"   # server and fan-out client each hold one fd per subscriber
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
cargo build -q --release -p server --bin awoooi --example fanout
bin="$TARGET_DIR/release/awoooi"

work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
base="http://127.0.0.1:$port"
cat > "$work/awoooi.toml" <<EOF
[graphql]
rate_per_minute = 0   # the benchmark is the only caller; measure the server, not the limiter
[auth]
credential_cache_seconds = $credential_cache
EOF
args=(serve --demo --bind "127.0.0.1:$port" --data-dir "$work" --site-root "$TARGET_DIR/site"
      --config "$work/awoooi.toml")
[ -n "$database_url" ] && args+=(--database-url "$database_url")
AWOOOI_DEMO_PASSWORD=bench-password RUST_LOG=warn taskset -c 0 "$bin" "${args[@]}" \
  > "$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -fs "$base/healthz" >/dev/null && break; sleep 0.2; done

gql() { # gql TOKEN QUERY → JSON
  curl -fs "$base/graphql" -H 'content-type: application/json' -H "authorization: Bearer $1" \
    -d "$(python3 -c 'import json,sys; print(json.dumps({"query": sys.argv[1]}))' "$2")"
}
token=$(curl -fs "$base/graphql" -H 'content-type: application/json' \
  -d '{"query":"mutation { login(username: \"admin\", password: \"bench-password\") { token } }"}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["login"]["token"])')

echo "== seeding 1,000 incidents (one alert per service, 10 Alertmanager batches of 100)"
scripts/bench-seed.sh "$base" "$token"
for _ in $(seq 300); do
  busy=$(gql "$token" '{ incidents(status: ANALYZING, first: 1) { totalCount } }' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["incidents"]["totalCount"])')
  [ "$busy" = 0 ] && break; sleep 0.5
done
total=$(gql "$token" '{ incidents(first: 1) { totalCount } }' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["incidents"]["totalCount"])')
echo "incidents stored: $total"
# Background work the seeding started (proposals, notifications, indexing) runs for a while
# after the incidents are stored (and may start a few seconds late): measure once the server
# has been idle for five seconds in a row.
idle=0
for _ in $(seq 180); do
  before=$(awk '{ print $14 + $15 }' "/proc/$server/stat"); sleep 1
  after=$(awk '{ print $14 + $15 }' "/proc/$server/stat")
  if [ $((after - before)) -le 3 ]; then idle=$((idle + 1)); else idle=0; fi
  [ "$idle" -ge 5 ] && break
done

rps() { awk '/Requests\/sec/ { print $2 }'; }
run_wrk() { # run_wrk LABEL [wrk args…] → prints the wrk summary, returns req/s in $last
  local label=$1; shift
  echo "-- $label"
  out=$(taskset -c 1 wrk -t1 -c"${connections:-16}" -d"${seconds}s" --latency "$@")
  echo "$out" | grep -E 'Requests/sec|Latency|99%|Non-2xx' || true
  last=$(echo "$out" | rps)
}

echo
echo "== 1. GraphQL read throughput (server on 1 core, wrk -t1 -c16, ${seconds}s each; credential cache ${credential_cache} s)"
run_wrk 'GET /healthz (baseline)' "$base/healthz"
health=$last
TOKEN=$token BODY='{"query":"{ __typename }"}' run_wrk '{ __typename }' -s scripts/bench-post.lua "$base/graphql"
bare=$last
TOKEN=$token BODY='{"query":"query Incidents($first: Int!) { incidents(first: $first) { totalCount pageInfo { hasNextPage endCursor } edges { node { id title severity status service createdAt alertCount mergedInto assignee acknowledgedBy } } } }","variables":{"first":20}}' \
  run_wrk 'incidents(first: 20)' -s scripts/bench-post.lua "$base/graphql"
list=$last
python3 -c "print(f'{{ __typename }} = {float($bare)/float($health)*100:.0f}% of /healthz ({float($bare):.0f} vs {float($health):.0f} req/s)')"
python3 -c "print(f'incidents(first: 20) = {float($list)/float($bare)*100:.0f}% of {{ __typename }} ({float($list):.0f} vs {float($bare):.0f} req/s)')"

echo
echo "== 2. SSR: /incidents with $total incidents (server on 1 core)"
cookie=$(curl -fs -o /dev/null -D - "$base/auth/login" -d 'username=admin&password=bench-password' \
  | awk -F'[ ;]' 'tolower($1) == "set-cookie:" { print $2 }')
run_wrk 'GET /healthz (baseline)' "$base/healthz"
health=$last
run_wrk 'GET /incidents (SSR)' -H "Cookie: $cookie" "$base/incidents"
ssr=$last
# One connection: a page's own latency, with no queue in front of it.
connections=1 run_wrk 'GET /incidents (SSR, one connection)' -H "Cookie: $cookie" "$base/incidents"
python3 -c "print(f'SSR renders/s on one core: {float($ssr):.0f} ({float($ssr)/float($health)*100:.1f}% of /healthz at {float($health):.0f} req/s)')"

[ "$fanout" = 1 ] || exit 0
echo
echo "== 3. subscription fan-out: $clients graphql-ws subscribers"
taskset -c 1 "$TARGET_DIR/release/examples/fanout" --url "$base" --token "$token" --pid "$server" \
  --clients "$clients"
