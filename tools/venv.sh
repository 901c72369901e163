#!/usr/bin/env bash
# Makes the Python venv VENV_DIR from the requirements files (again only when they change) and
# prints the path of its python on stdout. Exits 1 with a message on stderr when the packages
# cannot be installed.
#   usage: tools/venv.sh VENV_DIR WHAT REQUIREMENTS...   (WHAT names the engines in messages)
set -uo pipefail
venv=$1 what=$2
shift 2
want=$(cat "$@" | sha256sum | cut -c1-16)
if [ "$(cat "$venv/.requirements" 2>/dev/null)" != "$want" ]; then
  py=$(command -v python3) || { echo "no python3 found to install $what" >&2; exit 1; }
  echo "Installing $what into $venv (once)" >&2
  rm -rf "$venv"
  "$py" -m venv "$venv" >&2 || exit 1
  reqs=()
  for r in "$@"; do reqs+=(-r "$r"); done
  if ! "$venv/bin/pip" install -q --disable-pip-version-check "${reqs[@]}" >&2; then
    echo "could not install $what from the package registry" >&2
    rm -rf "$venv"
    exit 1
  fi
  echo "$want" > "$venv/.requirements"
fi
echo "$venv/bin/python"
