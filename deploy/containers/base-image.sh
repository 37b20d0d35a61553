#!/usr/bin/env bash
# Assembles a JRE 25 base image locally, for building the services' images where no container registry can be
# reached (the images' default base is the public eclipse-temurin:25-jre). The same layout as that image: a
# Debian 12 root filesystem (debootstrap, minbase) with a Java runtime in /opt/java/openjdk on the PATH, made with
# jlink from this machine's JDK 25 (no development tools), plus an unprivileged user 10001 the services run as.
# Written as a docker-archive tar, which Jib takes as `tar://` base.
#
#   deploy/containers/base-image.sh OUT.tar        # ~1 min the first time; the root filesystem is kept in
#                                                  # $MODELMERGE_IMAGE_WORK (default target/containers)
# Needs root, debootstrap and buildah (Debian packages; installed when missing).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
. "$root/deploy/lib.sh"
out="$1"
work="${MODELMERGE_IMAGE_WORK:-$root/target/containers}"
mkdir -p "$work"
need_debian_packages debootstrap buildah

rootfs="$work/rootfs-bookworm"
if [ ! -x "$rootfs/bin/sh" ]; then
  echo "== debootstrap: Debian 12 (minbase) into $rootfs"
  rm -rf "$rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian > "$work/debootstrap.log" 2>&1 \
    || { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
fi

# The runtime: every module of the JDK but its development tools (compiler, jshell, jlink, debugger agents).
jre="$work/jre-25"
rm -rf "$jre"
modules="$("$JAVA_HOME/bin/java" --list-modules | sed 's/@.*//' \
  | grep -Ev '^jdk\.(compiler|javadoc|jdeps|jlink|jshell|jpackage|jartool|jstatd|editpad|internal\.ed|internal\.le|internal\.opt|jdi|jdwp\.agent|jconsole|hotspot\.agent|internal\.jvmstat)$' \
  | paste -sd, -)"
if ! jlinked="$("$JAVA_HOME/bin/jlink" --add-modules "$modules" --strip-debug --no-man-pages --no-header-files \
  --output "$jre" 2>&1)"; then
  echo "$jlinked" >&2
  exit 1
fi

echo "== buildah: the base image"
export STORAGE_DRIVER=vfs
container="$(buildah from scratch)"
trap 'buildah rm "$container" > /dev/null 2>&1 || true' EXIT
buildah copy --quiet "$container" "$rootfs" / > /dev/null
buildah copy --quiet "$container" "$jre" /opt/java/openjdk > /dev/null
mount_dir="$(buildah mount "$container")"
echo 'modelmerge:x:10001:10001:modelmerge:/home/modelmerge:/usr/sbin/nologin' >> "$mount_dir/etc/passwd"
echo 'modelmerge:x:10001:' >> "$mount_dir/etc/group"
mkdir -p "$mount_dir/home/modelmerge"
chown 10001:10001 "$mount_dir/home/modelmerge"
buildah umount "$container" > /dev/null
buildah config --env JAVA_HOME=/opt/java/openjdk \
  --env PATH=/opt/java/openjdk/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env LANG=C.UTF-8 --label org.opencontainers.image.description="Debian 12 with a JRE 25 (jlink of $("$JAVA_HOME/bin/java" -version 2>&1 | head -1 | tr -d '"'))" \
  --os linux --arch amd64 "$container"
rm -f "$out"
buildah commit --quiet --format docker --rm "$container" "docker-archive:$out:modelmerge/jre:25" > /dev/null
trap - EXIT
echo "== base image: $out ($(du -h "$out" | cut -f1))"
