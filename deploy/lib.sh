# Shared by the deploy scripts (sourced, not run): the JDK to use, free ports, waiting for a service.

if [ -z "${JAVA_HOME:-}" ] && [ -x /usr/lib/jvm/temurin-25-jdk-amd64/bin/java ]; then
  export JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64
fi

# A TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_ready NAME PORT PID LOG [SECONDS]: until the service on PORT answers /q/health/ready; fails, showing its
# log, if process PID exits first or SECONDS (default 120) pass.
wait_ready() {
  local seconds="${5:-120}"
  for _ in $(seq $((seconds * 2))); do
    curl -sf "http://127.0.0.1:$2/q/health/ready" > /dev/null && return 0
    if ! kill -0 "$3" 2> /dev/null; then
      echo "$1 did not start; its log ($4):" >&2
      tail -n 40 "$4" >&2
      return 1
    fi
    sleep 0.5
  done
  echo "$1 did not become ready in $seconds s; see $4" >&2
  return 1
}

# need_wrk: installs wrk (Debian's package) where it is missing; the benchmarks drive load with it.
need_wrk() {
  if ! command -v wrk > /dev/null; then
    echo "== installing wrk (Debian package)"
    apt-get install -y wrk > /dev/null 2>&1 || { apt-get update > /dev/null && apt-get install -y wrk > /dev/null; }
  fi
}

# start_bench_registry JAR: starts that registry build on its embedded defaults in a new temporary data
# directory, on a free port, until it is ready; stops it and removes the directory when the script exits.
# Sets data, port, base (the API's URL), token (its first admin token) and auth (curl's header for it).
start_bench_registry() {
  data="$(mktemp -d)"
  port="$(free_port)"
  base="http://127.0.0.1:$port/api/v1"
  MODELMERGE_DATA_DIR="$data" QUARKUS_HTTP_PORT="$port" "$JAVA_HOME/bin/java" -jar "$1" > "$data/registry.log" 2>&1 &
  bench_registry=$!
  trap stop_bench_registry EXIT
  wait_ready registry "$port" "$bench_registry" "$data/registry.log" 60
  token="$(cat "$data/admin-token")"
  auth=(-H "Authorization: Bearer $token")
  echo "== registry up on port $port ($1, data in $data)"
}

stop_bench_registry() {
  local status=$?
  kill "$bench_registry" 2> /dev/null || true
  wait "$bench_registry" 2> /dev/null || true
  rm -rf "$data"
  exit $status
}

# need_debian_packages PACKAGE...: installs those of Debian's packages that are missing (as root).
need_debian_packages() {
  local missing=()
  for package in "$@"; do
    dpkg -s "$package" > /dev/null 2>&1 || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "== installing ${missing[*]} (Debian packages)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" > /dev/null 2>&1 \
    || { apt-get update -q > /dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" > /dev/null; }
}

# podman_run_flags: what `podman run` needs on this machine besides the defaults. This VM mounts cgroups in hybrid
# mode with a controller (hugetlb) on the v2 hierarchy, which Debian 12's crun refuses ("cgroups in hybrid mode
# not supported"): runc runs instead. And root here lacks CAP_SYS_RESOURCE, so podman's default limits on open
# files and processes (above this session's) cannot be set: the flags ask for the session's own open-file limit
# and a process limit under its own.
podman_run_flags() {
  if [ -d /sys/fs/cgroup/unified ] && grep -q . /sys/fs/cgroup/unified/cgroup.controllers && command -v runc > /dev/null; then
    echo --runtime runc
  fi
  echo --ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=8192:8192
}
