"""Least privilege, for real: every S3 request each job makes in a full pipeline run on
LocalStack, checked against that job's IAM policy in infra/terraform/iam.tf.

    python least_privilege.py --bin target/debug --endpoint http://127.0.0.1:4566

Lands the hand fixtures of every source (tests/fixtures) in a landing bucket, runs bronze,
silver, gold and the maintenance (lake optimize, checkpoint, vacuum) each behind its own logging
proxy (s3_log_proxy.py), maps each request to the IAM action and resource it needs, and
evaluates it against the job's policy statements (parsed from the Terraform with python-hcl2).
Fails when a job needs something its policy denies, or when a policy grants an action,
resource or listing prefix its job never used. Prints, per job, each kind of request and the
statement that allows it.
"""

import argparse
import fnmatch
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections import defaultdict
from pathlib import Path

import hcl2

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
JOBS = {
    "bronze": [["bronze"]],
    "silver": [["silver"]],
    "gold": [["gold"]],
    "maintenance": [["lake", "optimize"], ["lake", "checkpoint"], ["lake", "vacuum", "--retain-hours", "0"]],
}


def many(value) -> list:
    """An attribute's values: python-hcl2 wraps some in lists of lists."""
    if isinstance(value, list):
        return [v for item in value for v in many(item)]
    return [value]


def one(value) -> str:
    """An attribute's single value, unquoted."""
    values = many(value)
    if len(values) != 1:
        sys.exit(f"expected one value, found {values!r}")
    return str(values[0]).strip('"')


def policies(tf: Path, landing: str, lake: str) -> dict:
    """Each job's statements from the Terraform: sid, actions, resources, StringLike prefixes."""
    with open(tf) as f:
        doc = hcl2.load(f)
    arns = {"${local.landing}": f"arn:aws:s3:::{landing}", "${local.lake}": f"arn:aws:s3:::{lake}"}

    def resolve(text: str) -> str:
        text = text.strip('"')
        for k, v in arns.items():
            text = text.replace(k, v)
        return text

    out = {}
    for data in doc.get("data", []):
        for name, block in data.get("aws_iam_policy_document", {}).items():
            name = name.strip('"')
            if name not in JOBS:
                continue
            statements = []
            for st in block.get("statement", []):
                prefixes = None
                for cond in st.get("condition", []):
                    if one(cond["test"]) == "StringLike" and one(cond["variable"]) == "s3:prefix":
                        prefixes = [resolve(v) for v in many(cond["values"])]
                statements.append({
                    "sid": one(st["sid"]),
                    "effect": one(st.get("effect", "Allow")),
                    "actions": [a.strip('"') for a in many(st["actions"])],
                    "resources": [resolve(r) for r in many(st["resources"])],
                    "prefixes": prefixes,
                })
            out[name] = statements
    missing = set(JOBS) - set(out)
    if missing:
        sys.exit(f"no policy document for {sorted(missing)} in {tf}")
    return out


def needs(req: dict) -> list:
    """The (action, resource ARN, listing prefix) a logged request needs."""
    bucket, key, q, method = req["bucket"], req["key"], req["query"], req["method"]
    obj = f"arn:aws:s3:::{bucket}/{key}"
    if not key:
        if method == "POST" and "delete" in q:
            return [("s3:DeleteObject", f"arn:aws:s3:::{bucket}/{k}", None) for k in req.get("keys", [])]
        if method in ("GET", "HEAD") and not ({"location", "versioning", "policy", "acl"} & set(q)):
            return [("s3:ListBucket", f"arn:aws:s3:::{bucket}", q.get("prefix", ""))]
        return [(f"s3:Bucket{method.title()}:{','.join(sorted(q))}", f"arn:aws:s3:::{bucket}", None)]
    if method in ("GET", "HEAD"):
        return [("s3:GetObject", obj, None)]
    if method == "DELETE":
        return [("s3:AbortMultipartUpload" if "uploadId" in q else "s3:DeleteObject", obj, None)]
    if method in ("PUT", "POST"):
        got = [("s3:PutObject", obj, None)]
        if req.get("copy_source"):
            src = urllib.parse.unquote(req["copy_source"]).lstrip("/")
            got.append(("s3:GetObject", f"arn:aws:s3:::{src}", None))
        return got
    return [(f"s3:{method}", obj, None)]


def allows(st: dict, action: str, resource: str, prefix) -> bool:
    if st["effect"] != "Allow":
        return False
    if not any(fnmatch.fnmatchcase(action, a) for a in st["actions"]):
        return False
    if not any(fnmatch.fnmatchcase(resource, r) for r in st["resources"]):
        return False
    if st["prefixes"] is not None:
        return prefix is not None and any(fnmatch.fnmatchcase(prefix, p) for p in st["prefixes"])
    return True


def put(endpoint: str, path: str, data: bytes = b"") -> None:
    req = urllib.request.Request(f"{endpoint}/{path}", data=data, method="PUT")
    urllib.request.urlopen(req).read()


def start_proxy(endpoint: str, log: Path, work: Path):
    port_file = work / f"{log.stem}.port"
    proc = subprocess.Popen([sys.executable, str(HERE / "s3_log_proxy.py"), "--upstream", endpoint,
                             "--log", str(log), "--port-file", str(port_file)])
    for _ in range(100):
        if port_file.exists() and port_file.read_text():
            return proc, int(port_file.read_text())
        time.sleep(0.05)
    proc.kill()
    sys.exit("the logging proxy did not start")


def run_job(bin_dir: Path, endpoint: str, job: str, landing: str, lake: str, work: Path) -> list:
    """Runs one job's commands behind a logging proxy of its own; the requests they made."""
    log = work / f"{job}-{time.monotonic_ns()}.jsonl"
    proc, port = start_proxy(endpoint, log, work)
    try:
        env = {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ALLOW_HTTP": "true",
               "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
               "LAKE_ROOT": f"s3://{lake}", "LAKE_LANDING": f"s3://{landing}"}
        for command in JOBS[job]:
            done = subprocess.run([str(bin_dir / command[0]), *command[1:]], env=env, cwd=work,
                                  capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    finally:
        proc.kill()
        proc.wait()
    return [json.loads(line) for line in log.read_text().splitlines()]


def leave_crashed_leases(endpoint: str, lake: str) -> None:
    """The leases of runs that crashed on a node that is gone: the next job reads its lease and,
    once the store's clock is past its TTL, takes it over and fences it off, as after a killed
    pod."""
    for job in ("bronze", "silver", "gold"):
        version = {"run_id": f"crashed-{job}", "hold": {"kind": "all"}, "ttl_ms": 0,
                   "holder": {"host": "a-node-that-is-gone", "pid": 1, "boot_id": "gone"},
                   "epoch": 1, "state": {"kind": "held"}, "nonce": "crashed"}
        put(endpoint, f"{lake}/_leases/{job}/crashed-{job}/000001.json", json.dumps(version).encode())
    # the store's timestamps are allowed two seconds of slack
    time.sleep(3)


def run_jobs(bin_dir: Path, endpoint: str, landing: str, lake: str, work: Path) -> dict:
    """The pipeline twice (the second time after a crash left leases behind and a new object
    landed, so that tables are appended to and rewritten), then the maintenance, which compacts
    and vacuums what the second run replaced. Each job's logged requests."""
    logs = defaultdict(list)
    pipeline = [job for job in JOBS if job != "maintenance"]
    for job in pipeline:
        logs[job] += run_job(bin_dir, endpoint, job, landing, lake, work)
    land_again(endpoint, landing)
    leave_crashed_leases(endpoint, lake)
    for job in pipeline:
        logs[job] += run_job(bin_dir, endpoint, job, landing, lake, work)
    leave_crashed_leases(endpoint, lake)
    logs["maintenance"] = run_job(bin_dir, endpoint, "maintenance", landing, lake, work)
    return logs


def fixture_files():
    """(landing path, file) of every landing object of the hand-made fixtures."""
    for fixture in sorted((REPO / "tests/fixtures").iterdir()):
        for path in sorted(fixture.rglob("*")):
            rel = path.relative_to(fixture)
            if path.is_file() and rel.parts[0] in ("lastfm", "sparkify", "deezer", "eventsim"):
                yield rel.as_posix(), path


def land_fixtures(endpoint: str, landing: str) -> int:
    n = 0
    for key, path in fixture_files():
        put(endpoint, f"{landing}/{key}", path.read_bytes())
        n += 1
    return n


def land_again(endpoint: str, landing: str) -> None:
    """Every eventsim object again under a new name: a redelivery, which lands as a new batch."""
    for key, path in fixture_files():
        if key.startswith("eventsim/"):
            put(endpoint, f"{landing}/{key.replace('.json', '-again.json')}", path.read_bytes())


def check(policy: dict, logs: dict) -> list:
    """Prints what each job did and which statement allowed it; the problems found."""
    problems = []
    for job, requests in logs.items():
        statements = policy[job]
        used = defaultdict(set)  # (sid) -> {(action, resource pattern, prefix pattern)}
        seen = defaultdict(int)
        for req in requests:
            for action, resource, prefix in needs(req):
                st = next((s for s in statements if allows(s, action, resource, prefix)), None)
                if st is None:
                    problems.append(f"{job}: {req['method']} {req['bucket']}/{req['key']}"
                                    f"{'?prefix=' + prefix if prefix is not None else ''} needs {action} on {resource}"
                                    " and no statement of its policy allows it")
                    continue
                r = next(r for r in st["resources"] if fnmatch.fnmatchcase(resource, r))
                a = next(a for a in st["actions"] if fnmatch.fnmatchcase(action, a))
                p = None
                if st["prefixes"] is not None:
                    p = next(p for p in st["prefixes"] if fnmatch.fnmatchcase(prefix, p))
                used[st["sid"]].add((a, r, p))
                seen[(st["sid"], action, r, p)] += 1
        print(f"\n{job}: {len(requests)} requests")
        for (sid, action, r, p), n in sorted(seen.items()):
            print(f"  {n:5d} × {action:18} {r}{'  prefix ' + p if p else ''}  ← {sid}")
        for st in statements:
            for a in st["actions"]:
                for r in st["resources"]:
                    for p in st["prefixes"] or [None]:
                        if not any(u[0] == a and u[1] == r and u[2] == p for u in used[st["sid"]]):
                            what = f"{a} on {r}" + (f" for prefix {p}" if p else "")
                            problems.append(f"{job}: statement {st['sid']} grants {what}, which the job never used")
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", type=Path, required=True, help="folder of the job binaries")
    ap.add_argument("--endpoint", default="http://127.0.0.1:4566")
    ap.add_argument("--terraform", type=Path, default=REPO / "infra/terraform/iam.tf")
    args = ap.parse_args()
    stamp = f"{os.getpid()}-{int(time.time())}"
    landing, lake = f"lp-landing-{stamp}", f"lp-lake-{stamp}"
    policy = policies(args.terraform, landing, lake)
    for bucket in (landing, lake):
        put(args.endpoint, bucket)
    n = land_fixtures(args.endpoint, landing)
    with tempfile.TemporaryDirectory() as work:
        logs = run_jobs(args.bin.resolve(), args.endpoint, landing, lake, Path(work))
    print(f"least privilege: {n} landing objects, {sum(map(len, logs.values()))} requests by {len(logs)} jobs")
    problems = check(policy, logs)
    if problems:
        print("\nleast privilege FAILED:", *problems, sep="\n  ")
        sys.exit(1)
    print("\nleast privilege: every request allowed, every grant used")


if __name__ == "__main__":
    main()
