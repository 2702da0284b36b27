#!/usr/bin/env bash
# Soak test (not part of CI): builds the real ledger binary, starts
# `ledger serve` on a temporary data dir and a free loopback port, finds the
# end-to-end maximum rate with a short calibration burst, then places orders
# at half that rate for 10 minutes while sampling the server's RSS, and checks
# that no request failed and every order reached a terminal state.
#
#   scripts/soak.sh                      # 10 minutes at half the maximum
#   SOAK_DURATION=2m scripts/soak.sh     # shorter
#   SOAK_RATE=200 scripts/soak.sh        # a fixed rate, no calibration
#   SOAK_ARGS="--conc 32" scripts/soak.sh
#
# Output: a table, then one JSON object (the last line). The server's log is
# kept at $SOAK_LOG (default: the data dir's serve.log, printed at the end).
# Exit status is non-zero when a request failed or orders were left pending.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .cache/bin
go build -o .cache/bin/ledger ./cmd/ledger
go build -o .cache/bin/soak ./tests/reliability/cmd/soak
data=$(mktemp -d)
log=${SOAK_LOG:-$data/serve.log}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
.cache/bin/ledger serve --addr "127.0.0.1:$port" --data "$data/ledger" ${SERVE_ARGS:-} >"$log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [ -z "${SOAK_KEEP:-}" ]; then rm -rf "$data"; else echo "data kept in $data"; fi
}
trap cleanup EXIT
status=0
.cache/bin/soak --url "http://127.0.0.1:$port" --pid "$pid" \
  --duration "${SOAK_DURATION:-10m}" --rate "${SOAK_RATE:-0}" --fraction 0.5 ${SOAK_ARGS:-} || status=$?
errors=$(grep -c '"level":"ERROR"' "$log" || true)
echo "server log: $errors ERROR lines ($log)"
if [ "$errors" -gt 0 ]; then grep '"level":"ERROR"' "$log" | head -20; status=1; fi
exit $status
