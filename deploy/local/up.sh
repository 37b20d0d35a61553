#!/usr/bin/env bash
# Starts the whole system on embedded defaults: the registry and the merge service, each on its own embedded
# PostgreSQL, storing everything under one data directory, on free 127.0.0.1 ports. Builds what is missing.
# Writes the addresses to $DATA/endpoints.json, which mergectl reads; deploy/local/down.sh stops both.
#
#   MODELMERGE_DATA_DIR=/tmp/mm deploy/local/up.sh      # default data directory: ~/.modelmerge
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
. "$root/deploy/lib.sh"
data="${MODELMERGE_DATA_DIR:-$HOME/.modelmerge}"
mkdir -p "$data/blobs" "$data/logs"
data="$(cd "$data" && pwd)"

registry_jar="$root/registry-service/target/quarkus-app/quarkus-run.jar"
merge_jar="$root/merge-service/target/quarkus-app/quarkus-run.jar"
if [ ! -f "$registry_jar" ] || [ ! -f "$merge_jar" ] || [ ! -f "$root/cli/target/mergectl.jar" ]; then
  echo "== building (tests skipped)"
  ./mvnw -q -B install -DskipTests
fi

"$root/deploy/local/down.sh" > /dev/null 2>&1 || true
registry_port="$(free_port)"
merge_port="$(free_port)"
jvm_flags="--add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow"

MODELMERGE_DATA_DIR="$data" QUARKUS_HTTP_PORT="$registry_port" \
  nohup "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -jar "$registry_jar" > "$data/logs/registry.log" 2>&1 &
echo $! > "$data/registry.pid"
wait_ready registry "$registry_port" "$(cat "$data/registry.pid")" "$data/logs/registry.log"

MODELMERGE_DATA_DIR="$data" QUARKUS_HTTP_PORT="$merge_port" \
  MODELMERGE_MERGE_REGISTRY_URL="http://127.0.0.1:$registry_port" \
  nohup "$JAVA_HOME/bin/java" $jvm_flags -jar "$merge_jar" > "$data/logs/merge-service.log" 2>&1 &
echo $! > "$data/merge-service.pid"
wait_ready merge-service "$merge_port" "$(cat "$data/merge-service.pid")" "$data/logs/merge-service.log"

cat > "$data/endpoints.json" <<JSON
{"registry": "http://127.0.0.1:$registry_port", "merge_service": "127.0.0.1:$merge_port"}
JSON
echo "== modelmerge is up (data in $data)"
echo "registry       http://127.0.0.1:$registry_port/api/v1   (OpenAPI: /q/swagger-ui)"
echo "merge service  127.0.0.1:$merge_port (gRPC, reflection on)"
echo "endpoints      $data/endpoints.json (mergectl reads it; export MODELMERGE_DATA_DIR=$data)"
