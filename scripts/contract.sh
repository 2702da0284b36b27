#!/usr/bin/env bash
# API contract fuzzing: builds the real ledger binary, starts `ledger serve` on
# a temporary data dir and a free loopback port, and runs schemathesis
# (installed into .cache/schemathesis) against its /openapi.json: no 5xx, and
# every status code, content type and body must match the schema. /feed is
# left out: its answer is an event stream that stays open (api/feed_test.go
# checks it against the document).
# ST_MAX_EXAMPLES (default 30) sets how many cases per operation and phase.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.cache/schemathesis
if [ ! -x "$venv/bin/st" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet 'schemathesis==4.32.5'
fi
mkdir -p .cache/bin
go build -o .cache/bin/ledger ./cmd/ledger
data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
.cache/bin/ledger serve --addr "127.0.0.1:$port" --data "$data" >"$data/serve.log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$data/serve.log"; exit 1; }
  sleep 0.1
done
"$venv/bin/st" run "http://127.0.0.1:$port/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples "${ST_MAX_EXAMPLES:-30}" --seed 20261125 --workers 1 --no-color \
  --exclude-path-regex '^/(admin/|feed)' \
  --suppress-health-check all
echo "schemathesis: no 5xx, every response conforms"
if grep -q '"level":"ERROR"' "$data/serve.log"; then
  echo "server logged errors during the contract run:"; grep '"level":"ERROR"' "$data/serve.log" | head -20; exit 1
fi
