#!/usr/bin/env bash
# The newcomer's first command: build modelmerge, then inspect the real checkpoints and adapters in
# ../shared/fixtures/real (written by PEFT, transformers and tinygrad). When the merge engine lands, this
# script runs a real merge end to end instead.
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

echo
echo "== a truncated copy is refused with one line naming the file and the problem"
broken="$(mktemp -d)/truncated.safetensors"
head -c 100 "$fixtures/mnist-tinygrad-full/model.safetensors" > "$broken"
code=0
./mergectl inspect "$broken" || code=$?
if [ "$code" -eq 0 ]; then
  echo "expected mergectl to refuse $broken" >&2
  exit 1
fi
echo "(exit code $code)"
