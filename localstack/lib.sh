# Shared settings of the LocalStack scripts (sourced, not run).
LOCALSTACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOCALSTACK_PORT=${LOCALSTACK_PORT:-4566}
LOCALSTACK_STATE=${LOCALSTACK_STATE:-$LOCALSTACK_DIR/.state}
LOCALSTACK_VENV=${LOCALSTACK_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/lakehouse-jobs/localstack-venv}
LOCALSTACK_HEALTH=http://127.0.0.1:$LOCALSTACK_PORT/_localstack/health
LOCALSTACK_PIDFILE=$LOCALSTACK_STATE/localstack.pid

localstack_healthy() {
  curl -sf --max-time 2 "$LOCALSTACK_HEALTH" 2>/dev/null | grep -Eq '"s3": *"(running|available)"'
}
