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
