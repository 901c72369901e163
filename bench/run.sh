#!/usr/bin/env bash
# `make bench` after the release build: installs the peer engines in a venv of their own (once)
# and runs bench/bench.py with the given arguments.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${XDG_CACHE_HOME:-$HOME/.cache}/lakehouse-jobs
reqs=(bench/requirements.txt) venv=$cache/bench-venv
if [[ " $* " == *" --all-peers "* ]]; then
  reqs+=(bench/requirements-all.txt) venv=$cache/bench-all-venv
fi
py=$(tools/venv.sh "${LAKE_BENCH_VENV:-$venv}" "the benchmark's peer engines" "${reqs[@]}")
exec "$py" bench/bench.py --bin "${CARGO_TARGET_DIR:-target}/release" --python "$py" "$@"
