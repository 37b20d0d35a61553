#!/usr/bin/env bash
# The registry's writes under load, on its embedded defaults (durable PostgreSQL: fsync and synchronous commit
# on), from a second process: POST /models (one committed transaction each) driven by wrk, then version
# registrations (each reads and checksums a small checkpoint, then commits) from CONCURRENCY client threads.
# Prints one JSON line per measurement. JAR points it at another build, to compare two side by side.
#
#   deploy/bench/registration-load.sh
#   JAR=/path/to/other/registry-service/target/quarkus-app/quarkus-run.jar deploy/bench/registration-load.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
. "$root/deploy/lib.sh"
duration="${DURATION:-15s}"
connections="${CONNECTIONS:-16}"
registrations="${REGISTRATIONS:-400}"
concurrency="${CONCURRENCY:-8}"
fixture="$root/../shared/fixtures/real/mnist-tinygrad-full/model.safetensors"

need_wrk
jar="${JAR:-$root/registry-service/target/quarkus-app/quarkus-run.jar}"
if [ ! -f "$jar" ]; then
  echo "== building"
  ./mvnw -q -B install -DskipTests
fi
start_bench_registry "$jar"

cat > "$data/create.lua" <<'LUA'
counter = 0
init = function(args)
  prefix = args[1]
  token = args[2]
end
request = function()
  counter = counter + 1
  local name = string.format("bench/%s-%d", prefix, counter)
  return wrk.format("POST", "/api/v1/models", {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}, '{"name": "' .. name .. '"}')
end
LUA
wrk -t1 -c"$connections" -d5s -s "$data/create.lua" "http://127.0.0.1:$port" -- warm "$token" > /dev/null
out="$(wrk -t1 -c"$connections" -d"$duration" --latency -s "$data/create.lua" "http://127.0.0.1:$port" -- run "$token")"
echo "$out"
if echo "$out" | grep -q 'Non-2xx'; then
  echo "error responses during the run" >&2
  exit 1
fi
p50="$(echo "$out" | awk '$1 == "50%" {print $2}')"
p99="$(echo "$out" | awk '$1 == "99%" {print $2}')"
rps="$(echo "$out" | awk '$1 == "Requests/sec:" {print $2}')"
echo "{\"write\": \"POST /models\", \"connections\": $connections, \"p50\": \"$p50\", \"p99\": \"$p99\", \"requests_per_s\": $rps}"

for i in $(seq "$registrations"); do
  mkdir -p "$data/blobs/r$i"
  ln "$fixture" "$data/blobs/r$i/model.safetensors" 2> /dev/null || cp "$fixture" "$data/blobs/r$i/model.safetensors"
  echo "{\"run\": $i}" > "$data/blobs/r$i/config.json"
done
python3 - "$base" "$data/blobs" "$registrations" "$concurrency" <<'PY'
import concurrent.futures, json, sys, time, urllib.request
base, blobs, n, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def post(path, body):
    request = urllib.request.Request(base + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return response.status
def register(i):
    post("/models", {"name": f"bench/reg-{i}"})
    return post(f"/models/bench/reg-{i}/versions", {"storage_uri": f"file://{blobs}/r{i}/"})
start = time.time()
with concurrent.futures.ThreadPoolExecutor(threads) as pool:
    statuses = list(pool.map(register, range(1, n + 1)))
seconds = time.time() - start
assert all(s == 201 for s in statuses), statuses
print(json.dumps({"write": "POST /models + POST .../versions", "threads": threads, "registrations": n,
                  "seconds": round(seconds, 2), "registrations_per_s": round(n / seconds, 1)}))
PY
