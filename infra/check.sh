#!/usr/bin/env bash
# make infra-check: every check of infra/, each of which fails when what it checks breaks.
#   hadolint and checkov on the Dockerfile; the Dockerfile, manifests and DAGs against the
#   workspace (test_infra_files.py); terraform fmt (when terraform is installed) and checkov on
#   the Terraform; kustomize renders every overlay, kubernetes-validate --strict and checkov
#   check the result; least privilege for real on LocalStack (least_privilege.py); the Airflow
#   DAGs loaded and run by Airflow (test_airflow.py).
# Installs what it needs from the package registries (two venvs, Debian's kubernetes-client for
# kubectl kustomize). LocalStack must be running (make infra-check starts it).
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${XDG_CACHE_HOME:-$HOME/.cache}/lakehouse-jobs
bin=${LAKE_BIN_DIR:-${CARGO_TARGET_DIR:-target}/debug}
endpoint=${LAKE_TEST_S3_ENDPOINT:-http://127.0.0.1:4566}
k8s_version=${K8S_VERSION:-1.31.0}
step() { printf '\n== %s\n' "$*" >&2; }

py=$(tools/venv.sh "$cache/infra-venv" "the infra checkers (hadolint, checkov, kubernetes-validate)" infra/requirements.txt)
venv=$(dirname "$py")
if ! command -v kubectl >/dev/null; then
  echo "installing kubectl (Debian package kubernetes-client) for kustomize" >&2
  sudo=$([ "$(id -u)" = 0 ] || echo sudo)
  { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq kubernetes-client; } >&2
fi
[ -x "$bin/bronze" ] || cargo build --workspace --bins
bin=$(cd "$bin" && pwd)

step "hadolint infra/docker/Dockerfile"
"$venv/hadolint" infra/docker/Dockerfile

step "checkov: Dockerfile and Terraform"
"$venv/checkov" --quiet --compact --skip-download --framework dockerfile -f infra/docker/Dockerfile
"$venv/checkov" --quiet --compact --skip-download --framework terraform -d infra/terraform

step "terraform fmt"
if command -v terraform >/dev/null; then
  terraform fmt -check -recursive -diff infra/terraform
else
  echo "terraform is not installed: formatting not checked" >&2
fi

step "Dockerfile, manifests and DAGs against the workspace"
"$py" -m pytest -q -p no:cacheprovider infra/tests/test_infra_files.py

rendered=$(mktemp -d)
trap 'rm -rf "$rendered"' EXIT
for overlay in infra/k8s/overlays/*/; do
  name=$(basename "$overlay")
  step "kustomize $overlay, kubernetes-validate --strict (Kubernetes $k8s_version), checkov"
  kubectl kustomize "$overlay" > "$rendered/$name.yaml"
  "$venv/kubernetes-validate" --strict -k "$k8s_version" "$rendered/$name.yaml"
  "$venv/checkov" --quiet --compact --skip-download --framework kubernetes -f "$rendered/$name.yaml"
done

step "least privilege: every S3 request of every job against its IAM policy (LocalStack)"
"$py" infra/tests/least_privilege.py --bin "$bin" --endpoint "$endpoint"

step "Airflow: the DAGs loaded and run by Airflow"
apy=$(tools/venv.sh "$cache/airflow-venv" "Apache Airflow" infra/requirements-airflow.txt)
airflow_home=$(mktemp -d)
export AIRFLOW_HOME=$airflow_home AIRFLOW__CORE__LOAD_EXAMPLES=False \
  AIRFLOW__CORE__DAGS_FOLDER=$PWD/infra/airflow/dags LAKE_BIN_DIR=$bin LAKE_TEST_S3_ENDPOINT=$endpoint
"$(dirname "$apy")/airflow" db migrate >/dev/null
"$apy" -m pytest -q -p no:cacheprovider infra/tests/test_airflow.py
rm -rf "$airflow_home"
echo "infra-check: every check passed" >&2
