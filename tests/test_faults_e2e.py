"""Faults over the wire: the real CLI and daemon against moto's server behind the fault injector.

Each test says which faults it injects (tests/faults.py). Deadlines are
correctness bounds, generous for a loaded machine; nothing waits by sleeping:
every wait polls a condition with a timeout.
"""

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.alarm_helpers import actions_enabled, alarm_actions_yaml, one_off_window_yaml, put_alarms
from tests.conftest import run_cli
from tests.daemon_helpers import DaemonProcess
from tests.fault_stack import STACK_SERVICES, seed_stack, stack_converged
from tests.faults import Fault, FaultyAws, Rule, faulty_aws
from tests.snapshot_helpers import CLUSTER, PREFIX, create_cluster, manifest_yaml, seed_snapshot
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

SERVICES = ("ecs", "application-autoscaling", "rds", "monitoring")
LOSABLE = [
    ("ecs", "UpdateService"),
    ("rds", "CreateDBClusterSnapshot"),
    ("rds", "DeleteDBClusterSnapshot"),
    ("monitoring", "EnableAlarmActions"),
]


@pytest.fixture(scope="module")
def _faulty_server() -> Iterator[FaultyAws]:
    with faulty_aws() as aws:
        yield aws


@pytest.fixture
def aws(_faulty_server: FaultyAws) -> Iterator[FaultyAws]:
    _faulty_server.reset()
    _faulty_server.faults.only_agent = "homeostat/"  # seeding and checks by the test are never faulted
    yield _faulty_server
    _faulty_server.faults.clear()


def environment(aws: FaultyAws, tmp_path: Path) -> dict[str, str]:
    return aws.moto.env(
        HOMEOSTAT_DESIRED_STATE=str(tmp_path / "desired"),
        HOMEOSTAT_HISTORY=f"sqlite:///{tmp_path / 'history.db'}",
        HOMEOSTAT_LOG_FORMAT="json",
    )


def history(env: dict[str, str]) -> list[dict[str, Any]]:
    result = run_cli("history", "--json", "--limit", "10000", env=env)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


@pytest.mark.parametrize(("fault", "first"), [(Fault.THROTTLE, 2), (Fault.SERVER_ERROR, 1), (Fault.RESET, 1)])
def test_transient_faults_of_every_operation_converge_in_one_pass(
    aws: FaultyAws, tmp_path: Path, fault: Fault, first: int
) -> None:
    """The first calls of every operation of every service are throttled (the service's own code), answered
    with a 5xx, or have their connection reset; botocore's retries absorb them and one `run --once` fixes
    every kind."""
    slot = seed_stack(aws, tmp_path / "desired", datetime.now(UTC))
    for service in SERVICES:
        aws.faults.set_service(service, Rule(fault, first=first))
    env = environment(aws, tmp_path)

    result = run_cli("run", "--once", env=env, timeout=240)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert stack_converged(aws, slot) == {"services": True, "snapshots": True, "alarms": True}
    faulted = Counter(s.operation for s in aws.faults.seen() if s.fault is fault)
    answered = Counter(s.operation for s in aws.faults.seen() if s.fault is None)
    mutations = {"UpdateService", "CreateDBClusterSnapshot", "DeleteDBClusterSnapshot", "EnableAlarmActions"}
    listings = {"DescribeServices", "DescribeDBClusterSnapshots", "DescribeAlarms"}
    assert mutations | listings <= set(faulted), faulted
    assert set(faulted.values()) == {first}, faulted  # each operation: `first` faults, then answered
    assert set(answered) == set(faulted), (answered, faulted)
    assert sorted((r["action"], r["outcome"]) for r in history(env)) == [
        ("create_snapshot", "applied"),
        ("delete_snapshot", "applied"),
        *[("enable_alarm_actions", "applied")] * 4,
        *[("update_service", "applied")] * len(STACK_SERVICES),
    ]


def test_lost_answers_to_mutations_duplicate_nothing_and_the_next_pass_converges(
    aws: FaultyAws, tmp_path: Path
) -> None:
    """Each mutation is executed by moto but its answer is lost once; botocore sends it again. The
    retried create or delete finds its work done (an error for that action), nothing is duplicated, and
    the next `run --once` finds everything in sync."""
    slot = seed_stack(aws, tmp_path / "desired", datetime.now(UTC))
    for service, operation in LOSABLE:
        aws.faults.set(service, operation, Rule(Fault.LOSE_ANSWER, first=1))
    env = environment(aws, tmp_path)

    run_cli("run", "--once", env=env, timeout=240)  # exit 1 is honest: a retried create/delete failed

    assert stack_converged(aws, slot) == {"services": True, "snapshots": True, "alarms": True}
    lost = Counter(s.operation for s in aws.faults.seen() if s.fault is Fault.LOSE_ANSWER)
    assert lost == dict.fromkeys((op for _, op in LOSABLE), 1), lost
    again = run_cli("run", "--once", env=env, timeout=240)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert run_cli("plan", env=env).returncode == 0
    created = {s.params["DBClusterSnapshotIdentifier"] for s in aws.faults.seen("CreateDBClusterSnapshot")}
    assert created == {f"{PREFIX}{slot:%Y%m%d-%H%M}"}, created
    actions = Counter(r["action"] for r in history(env))
    assert actions["create_snapshot"] >= 1, actions
    assert actions["delete_snapshot"] >= 1, actions


def test_page_two_failures_delete_and_disable_nothing(aws: FaultyAws, tmp_path: Path) -> None:
    """Page 2 of the snapshot listing fails (5xx) and page 2 of the alarm listing is throttled, on every
    retry: `run --once` fails and deletes no snapshot and disables no alarm. With the faults gone, the same
    directory deletes and disables: the listings were long enough to matter."""
    rds = aws.moto.client("rds")
    create_cluster(rds)
    now = datetime.now(UTC)
    expired = [f"{PREFIX}old-{i}" for i in range(6)]
    for name in expired:
        seed_snapshot(rds, name, now - timedelta(days=10))
    for i in range(2):
        seed_snapshot(rds, f"{PREFIX}recent-{i}", now - timedelta(days=1))
    alarms = [f"prod-alarm-{i}" for i in range(6)]
    put_alarms(aws.moto.client("cloudwatch"), alarms, enabled=True)
    desired = tmp_path / "desired"
    desired.mkdir()
    (desired / "snapshots.yaml").write_text(manifest_yaml("aurora", CLUSTER, None))
    (desired / "alarms.yaml").write_text(
        alarm_actions_yaml("quiet", "alarmNamePrefix: prod-alarm-", enabled=False)
    )
    aws.faults.page_size = 3  # 8 snapshots and 6 alarms: pages 1, 2 (and 3) of each listing
    aws.faults.set("rds", "DescribeDBClusterSnapshots", Rule(Fault.SERVER_ERROR, page=2))
    aws.faults.set("monitoring", "DescribeAlarms", Rule(Fault.THROTTLE, page=2))
    env = environment(aws, tmp_path)

    failed = run_cli("run", "--once", env=env, timeout=240)

    assert failed.returncode == 1, failed.stdout[-3000:] + failed.stderr[-3000:]
    counts = aws.faults.counts()
    assert counts["DeleteDBClusterSnapshot"] == 0, counts
    assert counts["DisableAlarmActions"] == 0, counts
    pages = {(s.operation, s.page) for s in aws.faults.seen()}
    assert {("DescribeDBClusterSnapshots", 2), ("DescribeAlarms", 2)} <= pages, pages
    answer = rds.describe_db_cluster_snapshots(DBClusterIdentifier=CLUSTER, SnapshotType="manual")
    assert set(expired) <= {s["DBClusterSnapshotIdentifier"] for s in answer["DBClusterSnapshots"]}
    assert set(actions_enabled(aws.moto.client("cloudwatch"), "prod-alarm-").values()) == {True}

    aws.faults.set("rds", "DescribeDBClusterSnapshots", None)
    aws.faults.set("monitoring", "DescribeAlarms", None)
    fixed = run_cli("run", "--once", env=env, timeout=240)
    assert fixed.returncode == 0, fixed.stdout[-3000:] + fixed.stderr[-3000:]
    assert aws.faults.counts()["DeleteDBClusterSnapshot"] == len(expired)
    assert set(actions_enabled(aws.moto.client("cloudwatch"), "prod-alarm-").values()) == {False}


def test_a_persistently_failing_service_delays_no_other_kind_and_no_window_edge(
    aws: FaultyAws, tmp_path: Path
) -> None:
    """Every ECS call is throttled for the whole test. The other kinds converge anyway, and a maintenance
    window that starts 15 s after the daemon is ready and lasts 20 s silences its alarms after its start
    and re-enables them after its end, each within a generous bound (the contract promises 1 s)."""
    bound = timedelta(seconds=8)
    slot = seed_stack(aws, tmp_path / "desired", datetime.now(UTC))
    aws.faults.set_service("ecs", Rule(Fault.THROTTLE))
    env = environment(aws, tmp_path)
    daemon = DaemonProcess(
        aws.moto, tmp_path / "desired", env["HOMEOSTAT_HISTORY"], env=env, log_dir=tmp_path
    )
    try:
        daemon.wait_ready(timeout=180)
        wait_for(
            lambda: (c := stack_converged(aws, slot))["snapshots"] and c["alarms"],
            timeout=60,
            what="snapshots and alarms converged while ECS fails",
        )
        start = (datetime.now(UTC) + timedelta(seconds=15)).replace(microsecond=0)
        end = start + timedelta(seconds=20)
        (tmp_path / "desired" / "window.yaml").write_text(
            one_off_window_yaml("freeze", start, end, "alarmNamePrefix: prod-alarm-")
        )
        cloudwatch = aws.moto.client("cloudwatch")

        def alarms_are(enabled: bool) -> bool:
            return set(actions_enabled(cloudwatch, "prod-alarm-").values()) == {enabled}

        assert alarms_are(True)
        wait_for(lambda: alarms_are(False), timeout=seconds_until(start + bound), what="alarms silenced")
        assert datetime.now(UTC) < end, "silenced only after the window ended"
        wait_for(lambda: alarms_are(True), timeout=seconds_until(end + bound), what="alarms re-enabled")
        status = daemon.get("/status").json()
    finally:
        assert daemon.terminate(timeout=60) == 0
    rows = [r for r in history(env) if r["name"] == "prod-alarms" or r["kind"] == "MaintenanceWindow"]
    disabled = [parse(r["time"]) for r in rows if r["action"] == "disable_alarm_actions"]
    enabled_after = [parse(r["time"]) for r in rows if r["action"] == "enable_alarm_actions"][-4:]
    assert len(disabled) == 4, disabled
    assert all(start <= t <= start + bound for t in disabled), (start, disabled)
    assert len(enabled_after) == 4, enabled_after
    assert all(end <= t <= end + bound for t in enabled_after), (end, enabled_after)
    states = {(r["kind"], r["name"]): r["state"] for r in status["resources"]}
    assert {states[("ECSService", name)] for name in STACK_SERVICES} <= {"Error", "BackingOff"}
    assert aws.faults.counts()["UpdateService"] == 0


def seconds_until(instant: datetime) -> float:
    return max(1.0, (instant - datetime.now(UTC)).total_seconds())


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
