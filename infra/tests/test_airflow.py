"""The DAGs of infra/airflow under Airflow itself: the DagBag loads with no import error and the
expected task graphs, and the single-machine DAG runs end to end with Airflow's own runner
(dag.test()) against a local lake and against LocalStack, leaving the answer in gold.

    LAKE_BIN_DIR=target/debug python -m pytest infra/tests/test_airflow.py

Needs apache-airflow and its standard and cncf-kubernetes providers (infra/check.sh installs
them in a venv); LocalStack for the S3 case (skipped, or failed under CI, without it).
"""

import json
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "infra/airflow/dags"
BIN = Path(os.environ.get("LAKE_BIN_DIR", REPO / "target/debug")).resolve()
ENDPOINT = os.environ.get("LAKE_TEST_S3_ENDPOINT", "http://127.0.0.1:4566")


def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def graph(dag) -> dict:
    return {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks}


def test_the_dags_load_with_the_expected_task_graphs():
    bag = dagbag()
    assert bag.import_errors == {}, bag.import_errors
    pipeline = {"bronze": ["silver"], "silver": ["gold"], "gold": []}
    assert graph(bag.get_dag("lakehouse")) == pipeline
    assert graph(bag.get_dag("lakehouse_k8s")) == pipeline
    assert graph(bag.get_dag("lakehouse_fanout")) == {
        "split": ["bronze", "silver_part"], "bronze": ["silver_part"], "silver_part": ["silver"], "silver": ["gold"],
        "gold": []}
    assert graph(bag.get_dag("lakehouse_maintenance")) == {
        "optimize": ["checkpoint"], "checkpoint": ["vacuum"], "vacuum": []}
    for dag_id in ("lakehouse", "lakehouse_k8s", "lakehouse_fanout"):
        for task in bag.get_dag(dag_id).tasks:
            assert task.retries == 3, (dag_id, task.task_id)
            assert task.retry_delay.total_seconds() > 90, "a retry waits out the lease"
    pods = {t.task_id: t.service_account_name for t in bag.get_dag("lakehouse_k8s").tasks}
    assert pods == {"bronze": "lake-bronze", "silver": "lake-silver", "gold": "lake-gold"}


def test_exit_codes_decide_the_retry():
    from airflow.sdk.exceptions import AirflowException, AirflowFailException
    import importlib.util

    spec = importlib.util.spec_from_file_location("lakehouse_jobs", DAGS / "lakehouse_jobs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.outcome("silver", 0, "")
    for code in (1, 4):
        with pytest.raises(AirflowException) as raised:
            module.outcome("silver", code, "")
        assert not isinstance(raised.value, AirflowFailException), code
    for code in (2, 3):
        with pytest.raises(AirflowFailException):
            module.outcome("silver", code, "")
    assert module.job_args("silver", {"lake": "s3://l", "from_month": "2009-03", "to_month": ""}) == [
        "--lake", "s3://l", "--from", "2009-03", "--to", "2009-03"]
    assert module.job_args("bronze", {"lake": "s3://l"}, "1/4") == ["--lake", "s3://l", "--shard", "1/4"]
    assert module.split({"parts": 3}) == [{"part": "0/3"}, {"part": "1/3"}, {"part": "2/3"}]


def landing_of_fixtures(root: Path) -> Path:
    landing = root / "landing"
    for fixture in ("lastfm-hand", "deezer-hand", "eventsim-hand"):
        for source in (REPO / "tests/fixtures" / fixture).iterdir():
            if source.is_dir() and source.name in ("lastfm", "deezer", "eventsim"):
                shutil.copytree(source, landing / source.name)
    return landing


def run_dag(lake: str, landing: str, dag_id: str = "lakehouse", **conf) -> dict:
    """dag.test() of a DAG that runs the binaries on the worker; each task's XCom (its run
    record), a list of them for a mapped task."""
    dag = dagbag().get_dag(dag_id)
    run = dag.test(run_conf={"lake": lake, "landing": landing, "bin_dir": str(BIN), **conf})
    assert run.state == "success", run.state
    records = {}
    for ti in run.get_task_instances():
        assert ti.state == "success", (ti.task_id, ti.map_index, ti.state)
        value = ti.xcom_pull(task_ids=ti.task_id, map_indexes=ti.map_index)
        if ti.map_index >= 0:
            records.setdefault(ti.task_id, []).append(value)
        else:
            records[ti.task_id] = value
    return records


def test_the_pipeline_dag_runs_end_to_end_on_a_local_lake(tmp_path):
    landing = landing_of_fixtures(tmp_path)
    lake = tmp_path / "lake"
    records = run_dag(str(lake), str(landing))
    assert records["bronze"]["outcome"] == "succeeded", records["bronze"]
    assert records["gold"]["job"] == "gold"
    top = (lake / "gold/lastfm/top_songs.tsv").read_text()
    assert top == (REPO / "tests/fixtures/lastfm-hand/expected_top_songs.tsv").read_text()


def test_the_fanout_dag_maps_shards_and_parts_and_gives_the_same_answer(tmp_path):
    landing = landing_of_fixtures(tmp_path)
    lake = tmp_path / "lake"
    records = run_dag(str(lake), str(landing), "lakehouse_fanout", parts=3)
    shards = sorted(r["details"]["shard"] for r in records["bronze"])
    assert shards == ["0/3", "1/3", "2/3"], shards
    parts = sorted(r["details"]["part"]["part"] for r in records["silver_part"])
    assert parts == ["0/3", "1/3", "2/3"], parts
    assert records["silver"]["details"]["silver.lastfm_listens refresh"].startswith("up to date: the parts")
    top = (lake / "gold/lastfm/top_songs.tsv").read_text()
    assert top == (REPO / "tests/fixtures/lastfm-hand/expected_top_songs.tsv").read_text()


def localstack() -> bool:
    try:
        urllib.request.urlopen(f"{ENDPOINT}/_localstack/health", timeout=3).read()
        return True
    except OSError:
        if os.environ.get("CI") == "true":
            pytest.fail(f"LocalStack is not answering at {ENDPOINT}")
        return False


def test_the_pipeline_dag_runs_end_to_end_on_localstack(tmp_path, monkeypatch):
    if not localstack():
        pytest.skip(f"LocalStack is not running at {ENDPOINT}")
    bucket = f"airflow-{os.getpid()}"
    urllib.request.urlopen(urllib.request.Request(f"{ENDPOINT}/{bucket}", method="PUT")).read()
    for path in sorted(landing_of_fixtures(tmp_path).rglob("*")):
        if path.is_file():
            key = path.relative_to(tmp_path).as_posix()
            urllib.request.urlopen(urllib.request.Request(
                f"{ENDPOINT}/{bucket}/{key}", data=path.read_bytes(), method="PUT")).read()
    for k, v in {"AWS_ENDPOINT_URL": ENDPOINT, "AWS_ALLOW_HTTP": "true", "AWS_ACCESS_KEY_ID": "test",
                 "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    records = run_dag(f"s3://{bucket}/lake", f"s3://{bucket}/landing")
    assert records["silver"]["outcome"] == "succeeded"
    top = urllib.request.urlopen(f"{ENDPOINT}/{bucket}/lake/gold/lastfm/top_songs.tsv").read().decode()
    assert top == (REPO / "tests/fixtures/lastfm-hand/expected_top_songs.tsv").read_text()
    rows = subprocess.run([str(BIN / "lake"), "--lake", f"s3://{bucket}/lake", "sql",
                           "SELECT count(*) AS n FROM gold.eventsim_activity_daily", "--format", "json"],
                          capture_output=True, text=True, check=True).stdout
    assert json.loads(rows.splitlines()[-1])["n"] == 2
