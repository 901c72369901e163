#!/usr/bin/env bash
# Makes the venv with the engines the interop tests read the lake with (DuckDB + its delta
# extension, Python deltalake, Polars) and prints the path of its python on stdout.
# Exits 1 with a message on stderr when the packages cannot be installed; the tests then skip.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv=${LAKE_INTEROP_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/lakehouse-jobs/interop-venv}
want=$(sha256sum "$here/requirements.txt" | cut -c1-16)
if [ "$(cat "$venv/.requirements" 2>/dev/null)" != "$want" ]; then
  py=$(command -v python3) || { echo "interop: no python3 found" >&2; exit 1; }
  echo "Installing DuckDB, deltalake and Polars into $venv (once)" >&2
  rm -rf "$venv"
  "$py" -m venv "$venv" >&2 || exit 1
  if ! "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt" >&2; then
    echo "interop: could not install the engines from the package registry; interop tests will skip" >&2
    rm -rf "$venv"
    exit 1
  fi
  echo "$want" > "$venv/.requirements"
fi
echo "$venv/bin/python"
