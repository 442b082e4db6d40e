"""The floor: a minimal boto3 script doing one benchmark's job, as a process of its own.

    python -m benchmarks.floor JOB.json --workers N [--imports before|beside]

The job file (written by `floor_compare`) names the scenario and what is desired. With
one worker every call is sent in turn; with N, every call that does not depend on
another (DescribeServices batches, deletions, alarm batches) goes through N threads.
Listings follow their page tokens, as homeostat's do. Prints `actions N`.

`--imports before` first imports the libraries homeostat's `run --once` loads beside boto3
(the base in pyproject: pydantic, PyYAML, structlog, prometheus-client, SQLAlchemy with its
SQLite dialect) and does nothing with them: the floor of a process that has those
dependencies at all, before any of homeostat's own code or work. `--imports beside` imports
them on a thread started once the client is made, beside the calls, and waits for it before
exiting: the most that moving start-up work behind the round trips could hide.
"""

import argparse
import importlib
import json
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config

BASE_LIBRARIES = ("pydantic", "yaml", "structlog.stdlib", "prometheus_client", "sqlalchemy.dialects.sqlite")
CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, user_agent_extra="floor/1")


Client = Callable[[str], Any]  # a service name to its boto3 client


def import_base() -> None:
    for library in BASE_LIBRARIES:
        importlib.import_module(library)


def run_all(workers: int, calls: Iterable[Callable[[], Any]]) -> list[Any]:
    if workers == 1:
        return [call() for call in calls]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda call: call(), calls))


def snapshots(job: dict[str, Any], workers: int, client: Client) -> int:
    rds = client("rds")
    cluster, prefix = job["cluster"], job["prefix"]
    rds.describe_db_clusters(Filters=[{"Name": "db-cluster-id", "Values": [cluster]}])
    found: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"DBClusterIdentifier": cluster, "SnapshotType": "manual", "MaxRecords": 100}
    while True:
        page = rds.describe_db_cluster_snapshots(**kwargs)
        found.extend(page.get("DBClusterSnapshots", []))
        if not page.get("Marker"):
            break
        kwargs["Marker"] = page["Marker"]
    owned = sorted(
        (
            s
            for s in found
            if s["DBClusterSnapshotIdentifier"].startswith(prefix) and s["Status"] == "available"
        ),
        key=lambda s: s["SnapshotCreateTime"],
        reverse=True,
    )
    cutoff = datetime.now(UTC) - timedelta(days=job["max_age_days"])
    doomed = [
        s["DBClusterSnapshotIdentifier"] for s in owned[job["min_keep"] :] if s["SnapshotCreateTime"] < cutoff
    ]
    doomed = doomed[: job["max_deletions"]]
    run_all(
        workers, (lambda i=i: rds.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier=i) for i in doomed)
    )
    return len(doomed)


def alarms(job: dict[str, Any], workers: int, client: Client) -> int:
    cloudwatch = client("cloudwatch")
    disabled: list[str] = []
    kwargs: dict[str, Any] = {"AlarmNamePrefix": job["prefix"], "MaxRecords": 100}
    while True:
        page = cloudwatch.describe_alarms(**kwargs)
        disabled.extend(a["AlarmName"] for a in page.get("MetricAlarms", []) if not a["ActionsEnabled"])
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    batches = [disabled[i : i + 100] for i in range(0, len(disabled), 100)]
    run_all(workers, (lambda b=b: cloudwatch.enable_alarm_actions(AlarmNames=b) for b in batches))
    return len(disabled)


def services(job: dict[str, Any], workers: int, client: Client) -> int:
    ecs = client("ecs")
    wanted: dict[str, dict[str, int]] = job["services"]  # cluster -> service -> desiredCount
    batches = [
        (cluster, names[i : i + 10])
        for cluster, by_name in wanted.items()
        for names in [sorted(by_name)]
        for i in range(0, len(names), 10)
    ]
    pages = run_all(
        workers, (lambda c=c, b=b: ecs.describe_services(cluster=c, services=b) for c, b in batches)
    )
    drifted = [
        (cluster, item["serviceName"], wanted[cluster][item["serviceName"]])
        for (cluster, _), page in zip(batches, pages, strict=True)
        for item in page["services"]
        if item["desiredCount"] != wanted[cluster][item["serviceName"]]
    ]
    run_all(
        workers,
        (
            lambda c=c, s=s, n=n: ecs.update_service(cluster=c, service=s, desiredCount=n)
            for c, s, n in drifted
        ),
    )
    return len(drifted)


JOBS = {"snapshots": snapshots, "alarms": alarms, "services": services}

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("job")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--imports", choices=("before", "beside"))
    arguments = parser.parse_args()
    if arguments.imports == "before":
        import_base()
    beside = threading.Thread(target=import_base)

    def client(service: str) -> Any:
        made = boto3.client(service, config=CONFIG)  # type: ignore[call-overload]
        if arguments.imports == "beside" and beside.ident is None:  # once, at the first client
            beside.start()
        return made

    with open(arguments.job) as handle:
        job = json.load(handle)
    print(f"actions {JOBS[job['scenario']](job, arguments.workers, client)}")
    if beside.ident is not None:
        beside.join()
    sys.exit(0)
