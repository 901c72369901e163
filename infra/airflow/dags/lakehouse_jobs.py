"""The lake's pipeline under Airflow: bronze >> silver >> gold, and the daily table maintenance.

Two variants of the pipeline, the same graph:

- ``lakehouse`` runs the job binaries on the worker (``bin_dir`` param, or ``PATH``);
- ``lakehouse_k8s`` runs the jobs' image (infra/docker) on Kubernetes, one pod per job, each
  with its job's service account (infra/k8s), whose IAM role (infra/terraform) allows exactly
  what the job does.

What the jobs' exit codes mean decides the retries: 1 (a failed run; safe to re-run) and 4
(another run holds the lease) are retried after more than the lease's 90-second expiry; 2
(arguments or configuration) and 3 (too much went to quarantine) fail at once, since a retry
cannot help. Each job's run record (the last line of its stdout, JSON) is the task's XCom
value. A backfill is a run with the ``from_month``/``to_month`` params (YYYY-MM): silver
rebuilds those months from all of bronze, and gold follows.

``lakehouse_fanout`` is the pipeline past one machine, for loads and backfills too big for one
process: ``parts`` bronze shards (``bronze --shard i/N``), then ``parts`` silver parts over
month ranges (``silver --part i/N``), each a mapped task instance (dynamic task mapping) that
Airflow runs in parallel on its workers; then a plain silver run (dimensions and quarantines;
it finds the parts' tables up to date) and gold. A failed shard or part is retried on its own.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timedelta

from airflow.sdk.exceptions import AirflowException, AirflowFailException
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Param

# exit codes (`bronze --help`): retried, and not
RETRIED = {1: "the run failed; safe to re-run", 4: "another run holds the lease"}
FINAL = {2: "unusable arguments or configuration", 3: "too much went to quarantine"}

DEFAULT_ARGS = {
    "owner": "data-engineering",
    "retries": 3,
    # a lease left by a killed run on another host expires after 90 s
    "retry_delay": timedelta(minutes=2),
}

PARAMS = {
    "lake": Param(os.environ.get("LAKE_ROOT", ""), type="string", description="LAKE_ROOT, e.g. s3://acme-lake"),
    "landing": Param(os.environ.get("LAKE_LANDING", ""), type="string", description="LAKE_LANDING"),
    "bin_dir": Param(os.environ.get("LAKE_BIN_DIR", ""), type="string", description="folder of the job binaries; PATH when empty"),
    "from_month": Param("", type="string", description="backfill: first month (YYYY-MM) silver rebuilds"),
    "to_month": Param("", type="string", description="backfill: last month (YYYY-MM)"),
}


# the flag that runs one of N parts of a job
PART_FLAG = {"bronze": "--shard", "silver": "--part"}


def job_args(job: str, params: dict, part: str | None = None) -> list[str]:
    """The command line of one job for a DAG run's params (and part i/N of it)."""
    args = ["--lake", params["lake"]] if params.get("lake") else []
    if job == "bronze" and params.get("landing"):
        args += ["--landing", params["landing"]]
    if part:
        args += [PART_FLAG[job], part]
    elif job == "silver" and params.get("from_month"):
        args += ["--from", params["from_month"], "--to", params.get("to_month") or params["from_month"]]
    return args


def run_record(stdout: str) -> dict:
    """The run record a job prints as the last line of its stdout."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    try:
        return json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        return {}


def outcome(job: str, code: int, stderr_tail: str) -> None:
    """Raises what Airflow should do with a job's exit code."""
    if code == 0:
        return
    if code in FINAL:
        raise AirflowFailException(f"{job} exited {code} ({FINAL[code]}), not retried:\n{stderr_tail}")
    raise AirflowException(f"{job} exited {code} ({RETRIED.get(code, 'unknown')}):\n{stderr_tail}")


def run_job(job: str, params: dict, part: str | None = None) -> dict:
    """Runs one job binary (part i/N of it); its run record goes to XCom."""
    binary = os.path.join(params["bin_dir"], job) if params.get("bin_dir") else job
    done = subprocess.run([binary, *job_args(job, params, part)], capture_output=True, text=True)
    print(done.stderr[-20000:])
    outcome(job, done.returncode, done.stderr[-4000:])
    return run_record(done.stdout)


# What the three DAGs share: no catch-up of missed intervals (each run takes whatever has
# landed), one run at a time (the jobs' leases would refuse a second), the retries and params.
EVERY_DAG = dict(
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params=PARAMS,
)


with DAG(
    dag_id="lakehouse",
    description="bronze >> silver >> gold on the worker",
    schedule="@hourly",
    **EVERY_DAG,
    tags=["lakehouse"],
) as lakehouse:
    tasks = [
        PythonOperator(task_id=job, python_callable=run_job, op_kwargs={"job": job}, params=PARAMS)
        for job in ("bronze", "silver", "gold")
    ]
    tasks[0] >> tasks[1] >> tasks[2]


# on demand (a load or backfill), with N as a param
FANOUT = {**EVERY_DAG, "params": {**PARAMS, "parts": Param(4, type="integer", minimum=1, description="N: shards and parts")}}


def split(params: dict) -> list[dict]:
    """The mapped tasks' arguments: part i/N for i < N (the ``parts`` param)."""
    n = int(params["parts"])
    return [{"part": f"{i}/{n}"} for i in range(n)]


with DAG(
    dag_id="lakehouse_fanout",
    description="bronze shards >> silver parts >> silver >> gold, each shard and part a mapped task",
    schedule=None,
    **FANOUT,
    tags=["lakehouse", "fanout"],
) as lakehouse_fanout:
    parts = PythonOperator(task_id="split", python_callable=split)
    shards = PythonOperator.partial(task_id="bronze", python_callable=run_job, op_args=["bronze"]).expand(
        op_kwargs=parts.output)
    silver_parts = PythonOperator.partial(task_id="silver_part", python_callable=run_job, op_args=["silver"]).expand(
        op_kwargs=parts.output)
    after = [PythonOperator(task_id=job, python_callable=run_job, op_kwargs={"job": job}) for job in ("silver", "gold")]
    parts >> shards >> silver_parts >> after[0] >> after[1]


class LakeJobPod(KubernetesPodOperator):
    """A job's pod: its exit code decides the retry as on the worker, and its run record is the
    XCom value (the container writes it to /airflow/xcom/return.json)."""

    def execute(self, context):
        try:
            return super().execute(context)
        except AirflowException as failed:
            code = self.exit_code()
            if code in FINAL:
                raise AirflowFailException(f"{self.task_id} exited {code} ({FINAL[code]}), not retried") from failed
            raise

    def exit_code(self) -> int | None:
        statuses = getattr(getattr(getattr(self, "pod", None), "status", None), "container_statuses", None) or []
        for status in statuses:
            if status.name == "base" and status.state and status.state.terminated:
                return status.state.terminated.exit_code
        return None


def pod(job: str, arguments: str, **kwargs) -> LakeJobPod:
    """A job's pod from the image, with the job's service account."""
    return LakeJobPod(
        task_id=job,
        name=f"lake-{job}",
        namespace=os.environ.get("LAKE_NAMESPACE", "lakehouse"),
        image=os.environ.get("LAKE_IMAGE", "lakehouse-jobs:latest"),
        service_account_name=f"lake-{job}",
        cmds=["sh", "-c"],
        # the run record (last stdout line) becomes the XCom value; the exit code is the job's
        arguments=[
            f"{arguments} > /tmp/out; code=$?; cat /tmp/out; mkdir -p /airflow/xcom; "
            "tail -n 1 /tmp/out > /airflow/xcom/return.json; exit $code"
        ],
        env_vars={"LAKE_ROOT": "{{ params.lake }}", "LAKE_LANDING": "{{ params.landing }}"},
        do_xcom_push=True,
        get_logs=True,
        on_finish_action="delete_succeeded_pod",
        **kwargs,
    )


with DAG(
    dag_id="lakehouse_k8s",
    description="bronze >> silver >> gold, each job a pod of the image",
    schedule="@hourly",
    **EVERY_DAG,
    tags=["lakehouse", "kubernetes"],
) as lakehouse_k8s:
    backfill = "{% if params.from_month %} --from {{ params.from_month }} --to {{ params.to_month or params.from_month }}{% endif %}"
    bronze = pod("bronze", "bronze")
    silver = pod("silver", "silver" + backfill)
    gold = pod("gold", "gold")
    bronze >> silver >> gold


with DAG(
    dag_id="lakehouse_maintenance",
    description="lake optimize, checkpoint and vacuum, daily",
    schedule="@daily",
    **EVERY_DAG,
    tags=["lakehouse", "maintenance"],
) as maintenance:

    def maintain(command: list[str], params: dict) -> list[dict]:
        binary = os.path.join(params["bin_dir"], "lake") if params.get("bin_dir") else "lake"
        lake = ["--lake", params["lake"]] if params.get("lake") else []
        done = subprocess.run([binary, *lake, *command], capture_output=True, text=True)
        print(done.stderr[-20000:])
        outcome(f"lake {command[0]}", done.returncode, done.stderr[-4000:])
        return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]

    steps = [
        PythonOperator(task_id=name, python_callable=maintain, op_kwargs={"command": command}, params=PARAMS)
        for name, command in (
            ("optimize", ["optimize"]),
            ("checkpoint", ["checkpoint"]),
            ("vacuum", ["vacuum", "--retain-hours", "168"]),
        )
    ]
    steps[0] >> steps[1] >> steps[2]
