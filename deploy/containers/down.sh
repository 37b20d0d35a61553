#!/usr/bin/env bash
# Stops what deploy/containers/up.sh started: SIGTERM, as Kubernetes does (the merge service hands its running
# jobs back to the queue), up to 60 s, then removes the containers; their logs go to $DATA/logs first.
set -uo pipefail
data="${MODELMERGE_DATA_DIR:-$HOME/.modelmerge}"
for name in modelmerge-merge-service modelmerge-registry; do
  podman container exists "$name" 2> /dev/null || continue
  podman stop -t 60 "$name" > /dev/null
  [ -d "$data/logs" ] && podman logs "$name" > "$data/logs/$name.log" 2>&1
  podman rm "$name" > /dev/null && echo "stopped $name"
done
rm -f "$data/endpoints.json"
