#!/usr/bin/env bash
# One TIES merge of three fine-tunes (synthetic, Llama-shaped, BF16), run by 1 and then by 3 merge-service
# processes on this machine, against one PostgreSQL (Debian's server binaries, started here) and a local output
# root: wall time of each run, and how many shards and bytes each replica merged.
#
#   SIZE=8G SHARD=2G deploy/bench/split-bench.sh         # default: SIZE=8G SHARD=2G, in /tmp/split-bench
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
. "$root/deploy/lib.sh"
size="${SIZE:-8G}"
shard="${SHARD:-2G}"
dir="${BENCH_DIR:-/tmp/split-bench}"
pgbin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
mkdir -p "$dir/logs"
pids=()
# PostgreSQL refuses to run as root: as root, its server runs as the postgres user
as_pg=()
if [ "$(id -u)" = 0 ]; then
  as_pg=(runuser -u postgres --)
fi
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
  "${as_pg[@]}" "$pgbin/pg_ctl" -D "$dir/pg" -m fast stop > /dev/null 2>&1 || true
}
trap cleanup EXIT

if [ ! -f "$dir/models/ft-3/model.safetensors" ]; then
  echo "== generating a base and three fine-tunes of $size each"
  ./mergectl generate --size "$size" --names base,ft-1,ft-2,ft-3 "$dir/models"
fi
rm -rf "$dir/pg" "$dir/pg-socket" "$dir/out" "$dir"/registry "$dir"/merge-*
pgport="$(free_port)"
mkdir -p "$dir/pg" "$dir/pg-socket"
if [ ${#as_pg[@]} -gt 0 ]; then
  chown postgres "$dir/pg" "$dir/pg-socket" "$dir/logs"
fi
"${as_pg[@]}" "$pgbin/initdb" -D "$dir/pg" -U postgres --auth=trust > "$dir/logs/initdb.log"
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$dir/pg" -o "-p $pgport -k $dir/pg-socket -c listen_addresses=127.0.0.1" \
  -l "$dir/logs/postgres.log" -w start > /dev/null
for db in registry merge; do
  psql -q -h 127.0.0.1 -p "$pgport" -U postgres -c "CREATE DATABASE $db"
done
jdbc="jdbc:postgresql://127.0.0.1:$pgport"

regport="$(free_port)"
MODELMERGE_DATA_DIR="$dir/registry" QUARKUS_HTTP_PORT="$regport" QUARKUS_DATASOURCE_JDBC_URL="$jdbc/registry?user=postgres" \
  MODELMERGE_REGISTRY_LOCAL_ROOTS="$dir" \
  nohup "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -jar registry-service/target/quarkus-app/quarkus-run.jar \
  > "$dir/logs/registry.log" 2>&1 &
pids+=($!)
wait_ready registry "$regport" "${pids[-1]}" "$dir/logs/registry.log"
# the registry's first admin token: the merge services call the registry with it, mergectl the merge service
export MODELMERGE_TOKEN="$(cat "$dir/registry/admin-token")"

cat > "$dir/ties.yml" <<YAML
merge_method: ties
base_model: $dir/models/base
models:
  - model: $dir/models/ft-1
    parameters: {weight: 0.5, density: 0.4}
  - model: $dir/models/ft-2
    parameters: {weight: 0.5, density: 0.4}
  - model: $dir/models/ft-3
    parameters: {weight: 0.5, density: 0.4}
dtype: bfloat16
YAML

jvm_flags="--add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow"
for replicas in 1 3; do
  ports=()
  for r in $(seq "$replicas"); do
    port="$(free_port)"
    MODELMERGE_DATA_DIR="$dir/merge-$replicas-$r" QUARKUS_HTTP_PORT="$port" \
      QUARKUS_DATASOURCE_JDBC_URL="$jdbc/merge?user=postgres" MODELMERGE_MERGE_REGISTRY_URL="http://127.0.0.1:$regport" \
      MODELMERGE_MERGE_REGISTRY_TOKEN="$MODELMERGE_TOKEN" \
      MODELMERGE_MERGE_LOCAL_ROOTS="$dir" MODELMERGE_MERGE_OUTPUT_ROOT="file://$dir/out/" \
      nohup "$JAVA_HOME/bin/java" $jvm_flags -jar merge-service/target/quarkus-app/quarkus-run.jar \
      > "$dir/logs/merge-$replicas-$r.log" 2>&1 &
    pids+=($!)
    wait_ready "merge service $r" "$port" "${pids[-1]}" "$dir/logs/merge-$replicas-$r.log"
    ports+=("$port")
  done
  sync
  start=$(date +%s.%N)
  ./mergectl submit --wait --shard-size "$shard" --output "bench/ties-$replicas" \
    --merge-service "127.0.0.1:${ports[0]}" --registry "http://127.0.0.1:$regport" "$dir/ties.yml" > "$dir/logs/submit-$replicas.log"
  end=$(date +%s.%N)
  echo "== $replicas replica(s): $(python3 -c "print(round($end - $start, 1))") s"
  psql -q -h 127.0.0.1 -p "$pgport" -U postgres -d merge -c "SELECT split_part(t.merged_by, '-w', 1) AS replica,
      count(*) AS shards, round(sum(t.bytes_total) / 1e9, 2) AS output_gb
      FROM merge_task t JOIN merge_job j ON j.id = t.job_id WHERE j.output_model = 'bench/ties-$replicas'
      GROUP BY 1 ORDER BY 1"
  for r in $(seq "$replicas"); do kill "${pids[-1]}"; unset 'pids[-1]'; done
  sleep 2
  rm -rf "$dir/out"
done
