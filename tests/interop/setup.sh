#!/usr/bin/env bash
# Makes the venv with the engines the interop tests read the lake with (DuckDB + its delta
# extension, Python deltalake, Polars) and prints the path of its python on stdout.
# Exits 1 with a message on stderr when the packages cannot be installed; the tests that need
# them then skip, or fail under CI (CI=true).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec "$here/../../tools/venv.sh" \
  "${LAKE_INTEROP_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/lakehouse-jobs/interop-venv}" \
  "the interop engines (DuckDB, deltalake, Polars)" "$here/requirements.txt"
