#!/usr/bin/env bash
# Builds the two services' container images with the Maven build (Quarkus' Jib extension: no Docker daemon),
# pushes them to a container registry and shows what is in them (skopeo), then pulls them into podman's local
# storage as localhost/modelmerge/{registry-service,merge-service}:0.1.0 for deploy/containers/up.sh.
#
#   deploy/containers/build-images.sh
#
# Where: MODELMERGE_IMAGE_REGISTRY (host:port) to push to yours, with MODELMERGE_BASE_IMAGE=eclipse-temurin:25-jre
# (the images' default base) when it can reach Docker Hub. Without MODELMERGE_IMAGE_REGISTRY, as here, where no
# registry can be reached: a registry on 127.0.0.1 (Debian's docker-registry) started for the build, and a JRE 25
# base assembled locally (base-image.sh) unless MODELMERGE_BASE_IMAGE says otherwise.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
. "$root/deploy/lib.sh"
work="${MODELMERGE_IMAGE_WORK:-$root/target/containers}"
mkdir -p "$work"
need_debian_packages skopeo podman

base="${MODELMERGE_BASE_IMAGE:-}"
if [ -z "$base" ]; then
  deploy/containers/base-image.sh "$work/base-jre25.tar"
  base="tar://$work/base-jre25.tar"
fi

registry="${MODELMERGE_IMAGE_REGISTRY:-}"
if [ -z "$registry" ]; then
  need_debian_packages docker-registry
  registry="127.0.0.1:$(free_port)"
  cat > "$work/registry.yml" <<YAML
version: 0.1
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: $registry}
log: {level: warn}
YAML
  docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
  registry_pid=$!
  trap 'kill $registry_pid 2> /dev/null || true' EXIT
  for _ in $(seq 40); do curl -sf "http://$registry/v2/" > /dev/null && break; sleep 0.25; done
  echo "== a registry on $registry (Debian's docker-registry, storage in $work/registry)"
fi

echo "== building the images (base $base, pushing to $registry)"
./mvnw -q -B install -DskipTests -Dquarkus.container-image.build=true -Dquarkus.container-image.push=true \
  -Dquarkus.container-image.registry="$registry" -Dquarkus.container-image.insecure=true \
  -Dquarkus.jib.base-jvm-image="$base"

for service in registry-service merge-service; do
  image="$registry/modelmerge/$service:0.1.0"
  echo
  echo "== $image"
  skopeo inspect --tls-verify=false "docker://$image" | python3 -c '
import json, sys
i = json.load(sys.stdin)
print("digest  ", i["Digest"])
print("layers  ", len(i["Layers"]))'
  skopeo inspect --tls-verify=false --config "docker://$image" | python3 -c '
import json, sys
c = json.load(sys.stdin)["config"]
print("user    ", c.get("User"))
print("ports   ", " ".join(c.get("ExposedPorts", {})))
print("workdir ", c.get("WorkingDir"))
print("command ", " ".join(c["Entrypoint"]))
print("env     ", " ".join(e for e in c["Env"] if not e.startswith("PATH=")))'
  podman pull -q --tls-verify=false "$image" > /dev/null
  podman tag "$image" "localhost/modelmerge/$service:0.1.0"
done
echo
echo "== in podman's storage: localhost/modelmerge/registry-service:0.1.0, localhost/modelmerge/merge-service:0.1.0"
