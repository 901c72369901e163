#!/usr/bin/env bash
# Stops the LocalStack that up.sh started, by its PID.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ -f "$LOCALSTACK_PIDFILE" ] || { echo "LocalStack is not running (no $LOCALSTACK_PIDFILE)"; exit 0; }
pid=$(cat "$LOCALSTACK_PIDFILE")
if kill -0 "$pid" 2>/dev/null; then
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
fi
rm -f "$LOCALSTACK_PIDFILE"
echo "LocalStack stopped (pid $pid)"
