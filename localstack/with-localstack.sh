#!/usr/bin/env bash
# Runs a command with LocalStack up: starts it if needed and, if it started it, stops it when
# the command ends, whether it passed or failed. Exits with the command's status.
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
source "$here/lib.sh"

if localstack_healthy; then
  exec "$@"
fi
"$here/up.sh"
trap '"$here/down.sh" >/dev/null || true' EXIT INT TERM
"$@"
