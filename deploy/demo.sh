#!/usr/bin/env bash
# The newcomer's first command: build modelmerge, inspect the real checkpoints and adapters in
# ../shared/fixtures/real (written by PEFT, transformers and tinygrad), benchmark the merge methods on
# synthetic Llama-shaped checkpoints, then run a real TIES merge of those with mergectl and inspect the result.
# (The registry and merge services, and the one-command start of the whole system, come with their issues.)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [ -z "${JAVA_HOME:-}" ] && [ -x /usr/lib/jvm/temurin-25-jdk-amd64/bin/java ]; then
  export JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64
fi
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
trap 'rm -rf "$work"' EXIT
echo
echo "== mergectl bench: 3 synthetic BF16 models of 128 MB; ratio = I/O floor / merge time, measured in this run"
./mergectl bench --size 128m --models 3 --repeat 1 --dir "$work/models"

echo
echo "== mergectl merge: TIES of two fine-tunes onto their base (mergekit recipe format)"
cat > "$work/ties.yml" <<YAML
merge_method: ties
base_model: $work/models/model-0
models:
  - model: $work/models/model-1
    parameters: {weight: 0.6, density: [0.7, 0.3]}   # a density gradient over the layers
  - model: $work/models/model-2
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
