#!/usr/bin/env bash
# The test suite behind `make test` (run inside localstack/with-localstack.sh): builds the job
# binaries the tests run, prepares the interop engines, and runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
if py=$(tests/interop/setup.sh); then
  export LAKE_TEST_PYTHON=$py
else
  echo "warning: interop engines could not be installed; the tests that need them will skip (or fail under CI)" >&2
fi
# the report test opens the report in a real headless browser (Debian's chromium); the
# instruction budgets are counted by valgrind's callgrind
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v valgrind >/dev/null || missing+=(valgrind)
if ((${#missing[@]})); then
  echo "installing ${missing[*]} (Debian packages) for the report test and the instruction budgets" >&2
  sudo=$([ "$(id -u)" = 0 ] || echo sudo)
  if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"; } >&2; then
    echo "warning: ${missing[*]} could not be installed; the tests that need them will skip (or fail under CI)" >&2
  fi
fi
export LAKE_TEST_S3_ENDPOINT=${LAKE_TEST_S3_ENDPOINT:-http://127.0.0.1:4566}
export LAKE_TEST_REQUIRE_S3=1
export LAKE_TEST_DATA=${LAKE_TEST_DATA:-$(cd .. && pwd)/shared/data}
export LAKE_TEST_BENCH=${LAKE_TEST_BENCH:-$(cd .. && pwd)/shared/bench}
# the cluster tests (Ballista) need gold and lake built with it: one feature set for both
# commands, so the stack is compiled once
features=(--features gold/cluster,lake/cluster)
export LAKE_TEST_CLUSTER=1
cargo build --workspace --bins "${features[@]}"
cargo test --workspace "${features[@]}"
infra/check.sh
