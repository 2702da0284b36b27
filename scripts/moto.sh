#!/usr/bin/env bash
# Installs and runs moto (an AWS-protocol emulator, PyPI moto[server], pinned)
# on loopback for the AWS adapters' tests and for `ledger serve --backend aws`
# on a laptop.
#
#   scripts/moto.sh start   install into .cache/moto (reused), start on a free
#                           port, wait until ready, print ONLY the endpoint URL
#   scripts/moto.sh env     start it (as `start`) and print the export lines
#                           an AWS CLI or SDK needs to talk to it: endpoint,
#                           region, dummy credentials. Use:
#                             eval "$(scripts/moto.sh env)"
#   scripts/moto.sh stop    stop the server started by `start`
#
# The server applies one request at a time (scripts/moto_server.py): moto's
# own threaded server loses concurrent conflicting writes.
# Logs go to stderr and .cache/moto/server.log.
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_VERSION=5.2.5
dir=.cache/moto
pidfile=$dir/server.pid
portfile=$dir/server.port
log=$dir/server.log

say() { echo "moto.sh: $*" >&2; }

installed() {
  [ -x "$dir/bin/moto_server" ] &&
    [ "$("$dir/bin/python" -c 'import importlib.metadata as m; print(m.version("moto"))' 2>/dev/null)" = "$MOTO_VERSION" ]
}

running() {
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

ready() {
  local code
  if command -v curl >/dev/null 2>&1; then
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/moto-api/" 2>/dev/null || true)
  else
    code=$(python3 -c 'import sys, urllib.request as u; print(u.urlopen(sys.argv[1], timeout=2).status)' "http://127.0.0.1:$1/moto-api/" 2>/dev/null || true)
  fi
  [ "$code" = 200 ]
}

start() {
  mkdir -p "$dir"
  if running && [ -f "$portfile" ] && ready "$(cat "$portfile")"; then
    say "already running (pid $(cat "$pidfile"))"
    echo "http://127.0.0.1:$(cat "$portfile")"
    return
  fi
  if ! installed; then
    say "installing moto[server]==$MOTO_VERSION into $dir"
    python3 -m venv "$dir" >&2
    "$dir/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" >&2
  fi
  local port
  port=$("$dir/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
  say "starting on 127.0.0.1:$port (log $log)"
  # One request at a time (scripts/moto_server.py says why), not moto_server.
  nohup "$dir/bin/python" scripts/moto_server.py -H 127.0.0.1 -p "$port" >"$log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  echo "$port" >"$portfile"
  for _ in $(seq 1 300); do
    if ready "$port"; then
      echo "http://127.0.0.1:$port"
      return
    fi
    if ! running; then
      say "server exited; last lines of $log:"; tail -n 20 "$log" >&2; exit 1
    fi
    sleep 0.1
  done
  say "server not ready after 30s"; stop; exit 1
}

stop() {
  if running; then
    local pid
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    say "stopped (pid $pid)"
  fi
  rm -f "$pidfile" "$portfile"
}

# env_lines prints the variables the AWS CLI and SDKs read, for the server
# that start runs: moto accepts any credentials, but the CLI signs nothing
# without some, nor without a region.
env_lines() {
  local endpoint
  endpoint=$(start)
  cat <<EOF
export AWS_ENDPOINT_URL=$endpoint
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
unset AWS_SESSION_TOKEN AWS_PROFILE
EOF
}

case "${1:-}" in
  start) start ;;
  env) env_lines ;;
  stop) stop ;;
  *) echo "usage: scripts/moto.sh start|env|stop" >&2; exit 2 ;;
esac
