#!/usr/bin/env bash
# Starts LocalStack (S3 only) on 127.0.0.1:4566 without Docker. On first use it installs
# localstack-core into a venv (outside the clone, so that it is reused) from a Python >= 3.12.
# Set LOCALSTACK_PYTHON to choose the interpreter.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if localstack_healthy; then
  echo "LocalStack already running at http://127.0.0.1:$LOCALSTACK_PORT"
  exit 0
fi

find_python() {
  local candidates=()
  [ -n "${LOCALSTACK_PYTHON:-}" ] && candidates+=("$LOCALSTACK_PYTHON")
  candidates+=(python3.13 python3.12)
  if command -v pyenv >/dev/null 2>&1; then
    local root; root=$(pyenv root)
    candidates+=("$root"/versions/3.13*/bin/python3 "$root"/versions/3.12*/bin/python3)
  fi
  candidates+=(python3)
  for py in "${candidates[@]}"; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      command -v "$py"; return 0
    fi
  done
  return 1
}

want=$(sha256sum "$LOCALSTACK_DIR/requirements.txt" | cut -c1-16)
if [ "$(cat "$LOCALSTACK_VENV/.requirements" 2>/dev/null)" != "$want" ]; then
  py=$(find_python) || {
    echo "error: LocalStack needs Python >= 3.12 and none was found (tried python3.13, python3.12, pyenv's 3.12/3.13, python3)." >&2
    echo "       Install one (e.g. 'pyenv install 3.12') or set LOCALSTACK_PYTHON=/path/to/python3.12." >&2
    exit 1
  }
  echo "Installing LocalStack into $LOCALSTACK_VENV with $py (about a minute, once)"
  rm -rf "$LOCALSTACK_VENV"
  "$py" -m venv "$LOCALSTACK_VENV"
  "$LOCALSTACK_VENV/bin/pip" install -q --disable-pip-version-check -r "$LOCALSTACK_DIR/requirements.txt"
  echo "$want" > "$LOCALSTACK_VENV/.requirements"
fi

mkdir -p "$LOCALSTACK_STATE"/{fs,tmp,config,cache}
(
  export OVERRIDE_IN_DOCKER=0 SERVICES=s3 EAGER_SERVICE_LOADING=1 PERSISTENCE=0 DISABLE_EVENTS=1 \
    GATEWAY_LISTEN=127.0.0.1:$LOCALSTACK_PORT DNS_ADDRESS=0 SKIP_SSL_CERT_DOWNLOAD=1 \
    FILESYSTEM_ROOT="$LOCALSTACK_STATE/fs" TMPDIR="$LOCALSTACK_STATE/tmp" \
    CONFIG_DIR="$LOCALSTACK_STATE/config" XDG_CACHE_HOME="$LOCALSTACK_STATE/cache"
  nohup "$LOCALSTACK_VENV/bin/python" -m localstack.runtime.main \
    >"$LOCALSTACK_STATE/localstack.log" 2>&1 </dev/null &
  echo $! >"$LOCALSTACK_PIDFILE"
)
pid=$(cat "$LOCALSTACK_PIDFILE")
for _ in $(seq 1 120); do
  if localstack_healthy; then
    echo "LocalStack running at http://127.0.0.1:$LOCALSTACK_PORT (pid $pid, log $LOCALSTACK_STATE/localstack.log)"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "error: LocalStack exited while starting; last lines of its log:" >&2
    tail -n 30 "$LOCALSTACK_STATE/localstack.log" >&2
    rm -f "$LOCALSTACK_PIDFILE"
    exit 1
  fi
  sleep 0.5
done
echo "error: LocalStack did not become healthy within 60 s; see $LOCALSTACK_STATE/localstack.log" >&2
"$LOCALSTACK_DIR/down.sh" || true
exit 1
