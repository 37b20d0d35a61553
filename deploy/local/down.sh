#!/usr/bin/env bash
# Stops what deploy/local/up.sh started (each service stops its embedded PostgreSQL on the way out).
set -uo pipefail
data="${MODELMERGE_DATA_DIR:-$HOME/.modelmerge}"
for service in merge-service registry; do
  pid_file="$data/$service.pid"
  [ -f "$pid_file" ] || continue
  pid="$(cat "$pid_file")"
  if kill "$pid" 2> /dev/null; then
    for _ in $(seq 60); do kill -0 "$pid" 2> /dev/null || break; sleep 0.5; done
    echo "stopped $service ($pid)"
  fi
  rm -f "$pid_file"
done
rm -f "$data/endpoints.json"
