#!/usr/bin/env bash
# A tour of the tools without the services: build modelmerge, inspect the real checkpoints and adapters in
# ../shared/fixtures/real (written by PEFT, transformers and tinygrad), benchmark the merge methods on
# synthetic Llama-shaped checkpoints, run a real TIES merge of those with mergectl and inspect the result, then
# start the registry on its embedded defaults (PostgreSQL embedded, local storage), index all of it, register the
# merge with its parents and print its lineage. (The merge service and the one-command start of the whole system
# are in deploy/demo.sh.)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
. "$root/deploy/lib.sh"
fixtures="$root/../shared/fixtures/real"

echo "== building (tests skipped; run them with ./mvnw -B verify)"
./mvnw -q -B install -DskipTests

for dir in "$fixtures"/*/; do
  echo
  echo "== mergectl inspect --no-tensors ${dir%/}"
  ./mergectl inspect --no-tensors "${dir%/}"
done

echo
echo "== mergectl inspect --json (first lines) of the tinygrad MNIST checkpoint"
./mergectl inspect --json "$fixtures/mnist-tinygrad-full/model.safetensors" | head -n 12

work="$(mktemp -d)"
registry_pid=""
cleanup() {
  local status=$?
  if [ -n "$registry_pid" ]; then
    kill "$registry_pid" 2> /dev/null || true
    wait "$registry_pid" 2> /dev/null || true
  fi
  rm -rf "$work"
  exit $status
}
trap cleanup EXIT
blobs="$work/registry/blobs"   # the registry's local storage root
echo
echo "== mergectl bench: 3 synthetic BF16 models of 128 MB; ratio = I/O floor / merge time, measured in this run"
./mergectl bench --size 128m --models 3 --repeat 1 --dir "$blobs/models"

echo
echo "== mergectl merge: TIES of two fine-tunes onto their base (mergekit recipe format)"
cat > "$work/ties.yml" <<YAML
merge_method: ties
base_model: $blobs/models/model-0
models:
  - model: $blobs/models/model-1
    parameters: {weight: 0.6, density: [0.7, 0.3]}   # a density gradient over the layers
  - model: $blobs/models/model-2
    parameters:
      density: 0.5
      weight: [{filter: mlp, value: 0.6}, {value: 0.3}]   # a filtered weight
parameters: {normalize: true}
dtype: bfloat16
YAML
cat "$work/ties.yml"
./mergectl merge "$work/ties.yml" "$work/merged" --memory 512m
./mergectl inspect --no-tensors "$work/merged"
ls "$work/merged"

echo
echo "== a truncated copy is refused with one line naming the file and the problem"
broken="$work/truncated.safetensors"
head -c 100 "$fixtures/mnist-tinygrad-full/model.safetensors" > "$broken"
code=0
./mergectl inspect "$broken" || code=$?
if [ "$code" -eq 0 ]; then
  echo "expected mergectl to refuse $broken" >&2
  exit 1
fi
echo "(exit code $code)"

echo
echo "== registry: start it on embedded PostgreSQL and local storage under $work/registry"
port="$(free_port)"
api="http://127.0.0.1:$port/api/v1"
MODELMERGE_DATA_DIR="$work/registry" QUARKUS_HTTP_PORT="$port" \
  "$JAVA_HOME/bin/java" -jar registry-service/target/quarkus-app/quarkus-run.jar > "$work/registry.log" 2>&1 &
registry_pid=$!
wait_ready registry "$port" "$registry_pid" "$work/registry.log" 60
auth=(-H "Authorization: Bearer $(cat "$work/registry/admin-token")")
json() { python3 -m json.tool; }

echo "== registry: index the real fixtures and the synthetic models (headers read, files checksummed)"
cp -r "$fixtures"/* "$blobs/"
rm "$blobs/MANIFEST.md"
task="$(curl -sf "${auth[@]}" -H 'content-type: application/json' -d "{\"uri\": \"file://$blobs/\", \"namespace\": \"demo\"}" "$api/index")"
task_id="$(echo "$task" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
for _ in $(seq 300); do
  task="$(curl -sf "${auth[@]}" "$api/index/$task_id")"
  echo "$task" | grep -q '"state":"RUNNING"' || break
  sleep 0.2
done
echo "$task" | json

echo "== registry: register the TIES merge with its parents, point @candidate at it, print its lineage"
mv "$work/merged" "$blobs/ties-merged"
curl -sf "${auth[@]}" -H 'content-type: application/json' -d '{"name": "demo/ties-merged", "description": "TIES of model-1 and model-2 onto model-0"}' "$api/models" > /dev/null
curl -sf "${auth[@]}" -H 'content-type: application/json' -d @- "$api/models/demo/ties-merged/versions" > /dev/null <<JSON
{"storage_uri": "file://$blobs/ties-merged/",
 "parents": [{"ref": "demo/models-model-0@1", "relation": "merge"}, {"ref": "demo/models-model-1@1", "relation": "merge"},
             {"ref": "demo/models-model-2@1", "relation": "merge"}],
 "recipe": $(python3 -c 'import json, sys; print(json.dumps(open(sys.argv[1]).read()))' "$work/ties.yml"),
 "metrics": {"demo_run": 1}}
JSON
curl -sf "${auth[@]}" -X PUT -H 'content-type: application/json' -d '{"version": 1}' "$api/models/demo/ties-merged/aliases/candidate" > /dev/null
curl -sf "${auth[@]}" "$api/resolve?ref=demo/ties-merged@candidate" | python3 -c '
import json, sys
v = json.load(sys.stdin)
print(v["ref"], v["format"], v["status"], "aliases:", v["aliases"])
print("  summary:", json.dumps(v["summary"]["dtypes"]), v["summary"]["parameter_count"], "parameters in", v["summary"]["tensor_count"], "tensors")
for f in v["files"]:
    print("  ", f["path"], f["size"], "bytes sha256", f["sha256"][:16] + "...")'
curl -sf "${auth[@]}" "$api/models/demo/ties-merged/versions/1/lineage" | json
