#!/usr/bin/env bash
# Seeds a running server for the read benchmarks (bench-scale.sh, bench-ab.sh): 1,000
# incidents, one alert per service, posted as 10 Alertmanager batches of 100.
#   scripts/bench-seed.sh BASE_URL TOKEN
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 BASE_URL TOKEN" >&2; exit 2; }
base=$1
token=$2
for batch in $(seq 0 9); do
  python3 - "$batch" <<'PY' | curl -fs "$base/api/v1/alerts/alertmanager" \
    -H "authorization: Bearer $token" -H 'content-type: application/json' --data-binary @- >/dev/null
import json, sys
b = int(sys.argv[1])
alerts = [{"status": "firing", "labels": {"alertname": "LatencyHigh", "service": f"bench-{b * 100 + i:04d}",
           "severity": "warning", "namespace": "bench"}, "annotations": {"summary": "p99 latency high"},
           "startsAt": "2026-12-01T03:00:00Z"} for i in range(100)]
print(json.dumps({"version": "4", "status": "firing", "receiver": "awoooi", "groupKey": f"bench-{b}", "alerts": alerts}))
PY
done
