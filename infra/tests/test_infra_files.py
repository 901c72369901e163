"""What the deployment files say agrees with the project: the image builds with the Makefile's
release command and ships binaries the workspace builds, and every command the Kubernetes
manifests and Airflow DAGs run is one of those binaries.

    python -m pytest infra/tests/test_infra_files.py
"""

import json
import re
import shlex
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "infra/docker/Dockerfile"
SHIPPED = {"bronze", "silver", "gold", "lake"}


def workspace_binaries() -> set:
    meta = json.loads(subprocess.run(["cargo", "metadata", "--no-deps", "--format-version", "1"],
                                     cwd=REPO, capture_output=True, text=True, check=True).stdout)
    return {t["name"] for p in meta["packages"] for t in p["targets"] if "bin" in t["kind"]}


def instructions() -> list:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_the_image_builds_with_the_makefile_release_command():
    make = subprocess.run(["make", "-s", "-n", "build", "PROFILE=release"], cwd=REPO,
                          capture_output=True, text=True, check=True).stdout.strip()
    runs = [i[len("RUN "):].strip() for i in instructions() if i.startswith("RUN ")]
    assert make in runs, f"the Dockerfile builds with {runs}, the Makefile with {make!r}"
    assert "--locked" in make.split(), "release builds use the locked dependencies"


def test_the_image_ships_binaries_of_the_workspace():
    built = workspace_binaries()
    copied = set()
    for i in instructions():
        if i.startswith("COPY --from=build"):
            sources = shlex.split(i)[2:-1]
            copied |= {Path(s).name for s in sources if "/target/release/" in s}
    assert copied == SHIPPED, copied
    assert copied <= built, f"not binaries of the workspace: {copied - built}"
    user = [i for i in instructions() if i.startswith("USER ")]
    assert user and user[-1] not in ("USER root", "USER 0"), "runs as a non-root user"


def commands_of(manifest: dict):
    spec = manifest.get("spec", {}).get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec", {})
    for c in spec.get("initContainers", []) + spec.get("containers", []):
        yield c["name"], c.get("command", [])


def test_the_manifests_and_dags_run_binaries_the_image_ships():
    for path in (REPO / "infra/k8s").rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            for name, command in commands_of(doc or {}):
                if command:
                    assert command[0] in SHIPPED, f"{path}: {name} runs {command[0]}"
    dag = (REPO / "infra/airflow/dags/lakehouse_jobs.py").read_text()
    for job in re.findall(r'for job in \(([^)]*)\)', dag):
        for name in re.findall(r'"(\w+)"', job):
            assert name in SHIPPED, name


def test_each_pod_of_an_indexed_job_runs_its_own_part_of_as_many_as_there_are():
    indexed = 0
    for path in (REPO / "infra/k8s").rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            job = ((doc or {}).get("spec") or {}).get("jobTemplate", {}).get("spec", {})
            if "completions" not in job:
                continue
            indexed += 1
            assert job.get("parallelism") == job["completions"], path
            for name, command in commands_of(doc):
                assert command[-1] == f"$(PART_INDEX)/{job['completions']}", (path, name, command)
                assert command[-2] in ("--shard", "--part"), (path, name, command)
    assert indexed >= 4, "bronze shards and silver parts, in the base and the dev overlay"
