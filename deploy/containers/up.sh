#!/usr/bin/env bash
# Starts the whole system from the container images (build them first: deploy/containers/build-images.sh) with
# podman: the registry and the merge service, each on its embedded PostgreSQL, in the host's network on free
# 127.0.0.1 ports, the data directory mounted at the same path inside as outside (so file:// locations mean the
# same on both sides). The same contract as deploy/local/up.sh: writes $DATA/endpoints.json, which mergectl
# reads; deploy/containers/down.sh stops both.
#
#   MODELMERGE_DATA_DIR=/tmp/mm deploy/containers/up.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
. "$root/deploy/lib.sh"
data="${MODELMERGE_DATA_DIR:-$HOME/.modelmerge}"
mkdir -p "$data/blobs" "$data/logs"
data="$(cd "$data" && pwd)"
# The services run as user 10001, as in Kubernetes.
need_debian_packages podman runc
chown 10001:10001 "$data" "$data/blobs"

"$root/deploy/containers/down.sh" > /dev/null 2>&1 || true
registry_port="$(free_port)"
merge_port="$(free_port)"

# start NAME IMAGE PORT [ENV...]: one service's container, until it answers /q/health/ready.
start() {
  local name="$1" image="$2" port="$3"
  shift 3
  local env=(-e MODELMERGE_DATA_DIR="$data" -e QUARKUS_HTTP_HOST=127.0.0.1 -e QUARKUS_HTTP_PORT="$port")
  for variable in "$@"; do env+=(-e "$variable"); done
  podman run -d --name "$name" $(podman_run_flags) --network host -v "$data:$data" "${env[@]}" "$image" > /dev/null
  for _ in $(seq 240); do
    curl -sf "http://127.0.0.1:$port/q/health/ready" > /dev/null && return 0
    if [ "$(podman inspect -f '{{.State.Running}}' "$name")" != true ]; then
      echo "$name did not start; its log:" >&2
      podman logs --tail 40 "$name" >&2
      return 1
    fi
    sleep 0.5
  done
  echo "$name did not become ready in 120 s; see podman logs $name" >&2
  return 1
}

start modelmerge-registry localhost/modelmerge/registry-service:0.1.0 "$registry_port"
start modelmerge-merge-service localhost/modelmerge/merge-service:0.1.0 "$merge_port" \
  MODELMERGE_MERGE_REGISTRY_URL="http://127.0.0.1:$registry_port"

cat > "$data/endpoints.json" <<JSON
{"registry": "http://127.0.0.1:$registry_port", "merge_service": "127.0.0.1:$merge_port"}
JSON
echo "== modelmerge is up in containers (podman ps; data in $data)"
echo "registry       http://127.0.0.1:$registry_port/api/v1   (container modelmerge-registry)"
echo "merge service  127.0.0.1:$merge_port (gRPC; container modelmerge-merge-service)"
echo "endpoints      $data/endpoints.json (mergectl reads it; export MODELMERGE_DATA_DIR=$data)"
