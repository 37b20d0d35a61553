#!/usr/bin/env bash
# Load test of the registry's two hottest reads, GET .../versions/{v} and GET /resolve?ref=...@alias, driven by
# wrk from a second process against a registry on its embedded defaults (PostgreSQL embedded, local storage).
# Seeds one model with 20 versions (the real MNIST fixture, each with its own config.json) and an alias, warms up,
# then prints wrk's latency distribution and one summary line per endpoint: p50, p99, requests/s, and the ratio to
# the same run's ceiling: /q/health/live, which crosses the same HTTP stack and touches no database.
#
#   deploy/bench/registry-load.sh            # 20 s per endpoint, 32 connections
#   DURATION=60s CONNECTIONS=64 deploy/bench/registry-load.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
. "$root/deploy/lib.sh"
duration="${DURATION:-20s}"
connections="${CONNECTIONS:-32}"
fixture="$root/../shared/fixtures/real/mnist-tinygrad-full/model.safetensors"

need_wrk
jar="$root/registry-service/target/quarkus-app/quarkus-run.jar"
if [ ! -f "$jar" ]; then
  echo "== building"
  ./mvnw -q -B install -DskipTests
fi
start_bench_registry "$jar"

curl -sf "${auth[@]}" -H 'content-type: application/json' -d '{"name": "bench/mnist"}' "$base/models" > /dev/null
for i in $(seq 20); do
  mkdir -p "$data/blobs/v$i"
  cp "$fixture" "$data/blobs/v$i/model.safetensors"
  echo "{\"run\": $i}" > "$data/blobs/v$i/config.json"   # distinct content: a layout file
  curl -sf "${auth[@]}" -H 'content-type: application/json' -d "{\"storage_uri\": \"file://$data/blobs/v$i/\"}" \
    "$base/models/bench/mnist/versions" > /dev/null
done
curl -sf "${auth[@]}" -X PUT -H 'content-type: application/json' -d '{"version": 7}' "$base/models/bench/mnist/aliases/prod" > /dev/null
echo "== seeded bench/mnist with 20 versions, prod -> 7"

echo "== warm-up"
wrk -t1 -c"$connections" -H "Authorization: Bearer $token" -d5s "$base/models/bench/mnist/versions/7" > /dev/null
wrk -t1 -c"$connections" -H "Authorization: Bearer $token" -d5s "$base/resolve?ref=bench/mnist@prod" > /dev/null

summary=()
ceiling=""
for endpoint in "/q/health/live" "/api/v1/models/bench/mnist/versions/7" "/api/v1/resolve?ref=bench/mnist@prod"; do
  echo
  echo "== GET $endpoint: $connections connections, $duration"
  out="$(wrk -t1 -c"$connections" -H "Authorization: Bearer $token" -d"$duration" --latency "http://127.0.0.1:$port$endpoint")"
  echo "$out"
  if echo "$out" | grep -q 'Non-2xx'; then
    echo "error responses during the run" >&2
    exit 1
  fi
  p50="$(echo "$out" | awk '$1 == "50%" {print $2}')"
  p99="$(echo "$out" | awk '$1 == "99%" {print $2}')"
  rps="$(echo "$out" | awk '$1 == "Requests/sec:" {print $2}')"
  ceiling="${ceiling:-$rps}"
  ratio="$(python3 -c "print(round($rps / $ceiling, 2))")"
  summary+=("{\"endpoint\": \"GET $endpoint\", \"connections\": $connections, \"p50\": \"$p50\", \"p99\": \"$p99\", \"requests_per_s\": $rps, \"ratio_to_ceiling\": $ratio}")
done
echo
echo "== summary ($(nproc) cores shared by the registry, its PostgreSQL and wrk)"
printf '%s\n' "${summary[@]}"
