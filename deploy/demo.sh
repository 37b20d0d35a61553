#!/usr/bin/env bash
# The newcomer's first command: builds modelmerge, starts the whole system on embedded defaults
# (deploy/local/up.sh: registry and merge service, embedded PostgreSQL, local storage, free ports), registers a
# generated Llama-shaped base model and three fine-tunes of it, runs a TIES merge through the merge service's
# gRPC API (mergectl submit --wait), and prints the new version's metadata and lineage from the registry's REST
# API. Stops everything at the end unless KEEP=1.
#
#   deploy/demo.sh                              # the services as local processes (deploy/local/up.sh)
#   MODELMERGE_DEPLOY=containers deploy/demo.sh # the services from their container images, in podman
#                                               # (deploy/containers/: builds the images, then up.sh)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
. "$root/deploy/lib.sh"
export MODELMERGE_DATA_DIR="${MODELMERGE_DATA_DIR:-$(mktemp -d)/modelmerge}"
deploy="${MODELMERGE_DEPLOY:-local}"
case "$deploy" in local | containers) ;; *) echo "MODELMERGE_DEPLOY is local or containers, not $deploy" >&2; exit 2 ;; esac
start=$(date +%s)
cleanup() {
  local status=$?
  if [ "${KEEP:-0}" != 1 ]; then
    "deploy/$deploy/down.sh" > /dev/null || true
  fi
  exit $status
}
trap cleanup EXIT

if [ "$deploy" = containers ]; then
  echo "== building, with the container images (tests skipped; run them with ./mvnw -B verify)"
  deploy/containers/build-images.sh
else
  echo "== building (tests skipped; run them with ./mvnw -B verify)"
  ./mvnw -q -B install -DskipTests
fi

echo "== starting the system"
"deploy/$deploy/up.sh"
registry="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["registry"])' "$MODELMERGE_DATA_DIR/endpoints.json")"
# The registry's first admin token, which it wrote to the data directory (mergectl reads it from there too).
auth=(-H "Authorization: Bearer $(cat "$MODELMERGE_DATA_DIR/admin-token")")
blobs="$MODELMERGE_DATA_DIR/blobs"

echo
echo "== generating a Llama-shaped base and three fine-tunes (BF16, 256 MB each)"
./mergectl generate "$blobs/llama-3b-demo" --size 256m --names base,ft-math,ft-code,ft-chat
echo
echo "== registering them (the registry reads the headers and checksums the files)"
./mergectl register "file://$blobs/llama-3b-demo/base/" --model acme/llama-demo-base
for ft in math code chat; do
  ./mergectl register "file://$blobs/llama-3b-demo/ft-$ft/" --model "acme/llama-demo-$ft" \
    --parent acme/llama-demo-base@1=finetune
done
curl -sf "${auth[@]}" -X PUT -H 'content-type: application/json' -d '{"version": 1}' \
  "$registry/api/v1/models/acme/llama-demo-math/aliases/nightly" > /dev/null

recipe="$MODELMERGE_DATA_DIR/ties.yml"
cat > "$recipe" <<YAML
merge_method: ties
base_model: acme/llama-demo-base@1
models:
  - model: acme/llama-demo-math@nightly
    parameters: {weight: 0.5, density: 0.5}
  - model: acme/llama-demo-code
    parameters: {weight: 0.3, density: 0.5}
  - model: acme/llama-demo-chat
    parameters: {weight: 0.2, density: 0.5}
parameters: {normalize: true}
dtype: bfloat16
YAML
echo
echo "== submitting a TIES merge over gRPC and following it"
cat "$recipe"
./mergectl submit "$recipe" --output acme/llama-demo-merged --alias candidate --tag pipeline=demo \
  --description "TIES of the math, code and chat fine-tunes" --wait

echo
echo "== the new version, from the registry's REST API (GET /api/v1/resolve?ref=acme/llama-demo-merged@candidate)"
curl -sf "${auth[@]}" "$registry/api/v1/resolve?ref=acme/llama-demo-merged@candidate" | python3 -c '
import json, sys
v = json.load(sys.stdin)
for f in v["files"]:
    f["download_url"] = f["download_url"][:60] + "..."
v["recipe"] = v["recipe"].splitlines()
print(json.dumps(v, indent=2))'
echo
./mergectl show acme/llama-demo-merged@candidate | sed -n '/^lineage:/,/^recipe:/p' | sed '$d'
echo
echo "== done in $(( $(date +%s) - start )) s (data in $MODELMERGE_DATA_DIR; KEEP=1 leaves the system running)"
