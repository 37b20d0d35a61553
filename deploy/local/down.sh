#!/usr/bin/env bash
# Stops what deploy/local/up.sh started. SIGTERM first: the merge service stops its merges and hands their jobs
# back to the queue, then each service stops its embedded PostgreSQL (seconds). Waits up to 60 s for each; a
# service still running then is killed, and says so.
set -uo pipefail
data="${MODELMERGE_DATA_DIR:-$HOME/.modelmerge}"
for service in merge-service registry; do
  pid_file="$data/$service.pid"
  [ -f "$pid_file" ] || continue
  pid="$(cat "$pid_file")"
  if kill "$pid" 2> /dev/null; then
    for _ in $(seq 120); do kill -0 "$pid" 2> /dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2> /dev/null; then
      kill -9 "$pid" 2> /dev/null
      echo "killed $service ($pid): it did not stop within 60 s of SIGTERM" >&2
    else
      echo "stopped $service ($pid)"
    fi
  fi
  rm -f "$pid_file"
done
rm -f "$data/endpoints.json"
