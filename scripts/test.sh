#!/usr/bin/env bash
# Runs every test of orderledger: vet, the Go tests (with the race detector),
# the AWS adapters against a moto server this script installs and starts, the
# Terraform checks (checkov) and short fuzz runs. `make test` calls it and so
# does CI (.ci/run). Set FUZZTIME to fuzz longer (default 5s per target).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "go mod download"
go mod download

step "go mod tidy -diff"
if ! go mod tidy -diff; then
  echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1
fi

step "the ledger binary links no test package"
if go list -deps ./cmd/ledger | grep -x testing; then
  echo "cmd/ledger links package testing: a test helper is imported by shipped code"; exit 1
fi

step "go vet"
go vet ./...

step "staticcheck"
go tool staticcheck ./...

step "actionlint (.github/workflows)"
go tool actionlint

unformatted=$(gofmt -l $(git ls-files '*.go') 2>/dev/null || true)
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

# The AWS adapters' tests need moto; scripts/moto.sh installs it into a venv
# and starts it on a free loopback port, printing the endpoint.
if [ -x scripts/moto.sh ]; then
  step "moto server"
  LEDGER_TEST_AWS_ENDPOINT=$(scripts/moto.sh start)
  export LEDGER_TEST_AWS_ENDPOINT
  trap 'scripts/moto.sh stop >/dev/null 2>&1 || true' EXIT
  echo "moto at $LEDGER_TEST_AWS_ENDPOINT"
fi

# The metrics end-to-end test (tests/e2e) scrapes the ledger with a real
# Prometheus server and checks the exposition with promtool: Debian's
# prometheus package ships both. Installed once; skipped when present.
step "prometheus"
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends prometheus >/dev/null ||
    { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends prometheus >/dev/null; }
fi
prometheus --version 2>&1 | head -1

# The console test (tests/console) drives a real headless Chromium with
# chromedp: Debian's chromium, no downloaded browser build. Installed once;
# skipped when present. Under CI the test fails, not skips, without it.
step "chromium"
if ! command -v chromium >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends chromium >/dev/null ||
    { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends chromium >/dev/null; }
fi
chromium --version 2>/dev/null | head -1

step "go test -race"
# testreport prints the tests' output, then the counts per package and every
# skipped test with its reason.
go build -o .cache/testreport ./scripts/testreport
go test -race -count=1 -timeout 20m -json ./... | .cache/testreport

if [ -x scripts/checkov.sh ]; then
  step "checkov"
  scripts/checkov.sh
fi

if [ -x scripts/fuzz.sh ]; then
  step "fuzz"
  scripts/fuzz.sh
fi

if [ -x scripts/contract.sh ]; then
  step "API contract (schemathesis)"
  scripts/contract.sh
fi
echo
echo "all tests passed"
