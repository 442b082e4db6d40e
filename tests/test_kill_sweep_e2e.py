"""A SIGKILL sweep: `homeostat run` killed 12 times, then restarted, against moto behind the fault injector.

Six kills are timed inside a call with the injector's hold: while the server
holds a CreateDBClusterSnapshot, DeleteDBClusterSnapshot, DisableAlarmActions
or EnableAlarmActions, either before moto executed it (the request reached
AWS; it is executed once released, as AWS would) or after (the answer is
lost). Six more land at seeded random offsets after the start. Before each
round the test makes fresh work for every kind: a new SnapshotRetention
resource whose slot must be taken, one more expired owned snapshot, and
alarms flipped away from their desired state.

Afterwards: no slot has two snapshots, minKeep holds, protected, automated
and foreign snapshots are intact, every mutation the server saw has a
history row (none left `pending`), and the database passes
`PRAGMA integrity_check`.
"""

import contextlib
import json
import random
import sqlite3
import subprocess
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.alarm_helpers import actions_enabled, alarm_actions_yaml, put_alarms
from tests.conftest import run_cli
from tests.daemon_helpers import DaemonProcess
from tests.faults import Fault, FaultyAws, Rule, faulty_aws
from tests.snapshot_helpers import CLUSTER, PREFIX, create_cluster, seed_snapshot
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

SEED = 1011
MIN_KEEP = 2
# Every round flips the alarms back, which would be a fight (contract 2.1) from the fourth round on:
# this test is about kills, so the fight threshold is out of reach.
DAEMON_ARGS = ("--resync", "2", "--fight-threshold", "1000000")
QUIET = [f"quiet-{i}" for i in range(3)]  # AlarmActions wants them disabled
LOUD = [f"loud-{i}" for i in range(3)]  # AlarmActions wants them enabled
PROTECTED = f"{PREFIX}keep-20260101-0000"
UNTOUCHABLE = {PROTECTED, "prod-emergency-20260101-1200", "unrelated-backup"}
TIMED = [
    (Fault.HOLD, "rds", "CreateDBClusterSnapshot"),
    (Fault.HOLD_AFTER, "rds", "CreateDBClusterSnapshot"),
    (Fault.HOLD, "rds", "DeleteDBClusterSnapshot"),
    (Fault.HOLD_AFTER, "rds", "DeleteDBClusterSnapshot"),
    (Fault.HOLD, "monitoring", "DisableAlarmActions"),
    (Fault.HOLD_AFTER, "monitoring", "EnableAlarmActions"),
]
ROW_OF = {
    "CreateDBClusterSnapshot": "create_snapshot",
    "DeleteDBClusterSnapshot": "delete_snapshot",
    "DisableAlarmActions": "disable_alarm_actions",
    "EnableAlarmActions": "enable_alarm_actions",
}


@pytest.fixture
def aws() -> Iterator[FaultyAws]:
    with faulty_aws() as started:
        started.reset()  # moto's backends are per process: no state from earlier tests
        started.faults.only_agent = "homeostat/"
        yield started


def retention_yaml(name: str, prefix: str, schedule: str | None) -> str:
    lines = [
        "apiVersion: homeostat/v1",
        "kind: SnapshotRetention",
        f"metadata: {{name: {name}}}",
        "spec:",
        f"  dbClusterIdentifier: {CLUSTER}",
        f"  snapshotPrefix: {prefix}",
        f"  retention: {{maxAge: 7d, minKeep: {MIN_KEEP}, maxDeletionsPerRun: 20}}",
        f'  protect: ["{PREFIX}keep-*"]',
    ]
    if schedule is not None:
        lines.append(f'  schedule: "{schedule}"')
    return "\n".join(lines) + "\n"


def manual_snapshots(aws: FaultyAws) -> dict[str, dict[str, Any]]:
    answer = aws.moto.client("rds").describe_db_cluster_snapshots(DBClusterIdentifier=CLUSTER)
    return {s["DBClusterSnapshotIdentifier"]: s for s in answer["DBClusterSnapshots"]}


def make_work(aws: FaultyAws, desired: Path, round_number: int, slot: datetime) -> None:
    """Fresh work for every kind: a slot to take (a new resource), an expired owned snapshot newer than
    the others (so minKeep keeps it and lets an older one go), and alarms away from their desired state."""
    (desired / f"round-{round_number}.yaml").write_text(
        retention_yaml(f"round-{round_number}", f"round-{round_number}-", f"{slot.minute} {slot.hour} * * *")
    )
    created = datetime.now(UTC) - timedelta(days=10) + timedelta(hours=round_number)
    seed_snapshot(aws.moto.client("rds"), f"{PREFIX}expired-{round_number:02d}", created)
    cloudwatch = aws.moto.client("cloudwatch")
    cloudwatch.enable_alarm_actions(AlarmNames=QUIET)
    cloudwatch.disable_alarm_actions(AlarmNames=LOUD)


def test_twelve_sigkills_lose_no_mutation_duplicate_no_slot_and_keep_min_keep(
    aws: FaultyAws, tmp_path: Path
) -> None:
    rds = aws.moto.client("rds")
    create_cluster(rds)  # moto adds one automated snapshot
    automated = {k for k, s in manual_snapshots(aws).items() if s["SnapshotType"] == "automated"}
    assert automated
    for name in UNTOUCHABLE:
        seed_snapshot(rds, name, datetime.now(UTC) - timedelta(days=60))
    cloudwatch = aws.moto.client("cloudwatch")
    put_alarms(cloudwatch, QUIET + LOUD)
    desired = tmp_path / "desired"
    desired.mkdir()
    (desired / "retention.yaml").write_text(retention_yaml("aurora", PREFIX, None))
    (desired / "alarms.yaml").write_text(
        alarm_actions_yaml("quiet", "alarmNamePrefix: quiet-", enabled=False)
        + "---\n"
        + alarm_actions_yaml("loud", "alarmNamePrefix: loud-", enabled=True)
    )
    history_url = f"sqlite:///{tmp_path / 'history.db'}"
    env = aws.moto.env()
    slot = (datetime.now(UTC) - timedelta(minutes=5)).replace(second=0, microsecond=0)
    rng = random.Random(SEED)  # noqa: S311  # reproducible kill offsets, not cryptography
    rounds: list[tuple[Fault, str, str] | float] = [*TIMED, *(rng.uniform(0.5, 5.0) for _ in range(6))]
    rng.shuffle(rounds)

    for number, plan in enumerate(rounds):
        make_work(aws, desired, number, slot)
        if isinstance(plan, tuple):
            fault, service, operation = plan
            aws.faults.set(service, operation, Rule(fault, first=1, hold=120))
        daemon = DaemonProcess(aws.moto, desired, history_url, *DAEMON_ARGS, env=env, log_dir=tmp_path)
        try:
            if isinstance(plan, tuple):
                aws.faults.wait_held(plan[2], timeout=120)
            else:  # the kill's seeded offset; returns early only if the daemon died by itself (then fails)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    daemon.process.wait(timeout=plan)
        finally:
            daemon.kill()
            aws.faults.release()
        assert daemon.process.returncode == -9, daemon.log_text()[-2000:]
        if isinstance(plan, tuple):
            aws.faults.set(plan[1], plan[2], None)
        aws.faults.wait_idle(timeout=60)

    final = DaemonProcess(aws.moto, desired, history_url, *DAEMON_ARGS, env=env, log_dir=tmp_path)
    try:
        final.wait_ready(timeout=120)
        slot_names = {f"round-{n}-{slot:%Y%m%d-%H%M}" for n in range(len(rounds))}
        wait_for(
            lambda: (
                slot_names <= set(manual_snapshots(aws))
                and set(actions_enabled(cloudwatch, "quiet-").values()) == {False}
                and set(actions_enabled(cloudwatch, "loud-").values()) == {True}
            ),
            timeout=120,
            what="the restarted daemon converged",
        )
    finally:
        assert final.terminate(timeout=60) == 0, final.log_text()[-2000:]

    snapshots = manual_snapshots(aws)
    for n in range(len(rounds)):  # one snapshot per slot, and only the slot's name
        taken = [name for name in snapshots if name.startswith(f"round-{n}-")]
        assert taken == [f"round-{n}-{slot:%Y%m%d-%H%M}"], taken
    assert UNTOUCHABLE | automated <= set(snapshots)
    expired = f"{PREFIX}expired-"
    owned = [n for n, s in snapshots.items() if n.startswith(expired) and s["Status"] == "available"]
    assert len(owned) == MIN_KEEP, owned  # every round made one more; the newest MIN_KEEP stay

    rows = history_rows(history_url, env)
    assert not [r for r in rows if r["outcome"] == "pending"], "pending rows left after a clean restart"
    # Each request reached moto once (no retries: nothing here is throttled), so each needs its own row;
    # alarms flipped every round repeat their names, hence counts rather than a set.
    recorded = Counter((r["action"], r["target"]) for r in rows if not r["dry_run"])
    missing = sorted((Counter(mutations_seen(aws)) - recorded).elements())
    assert not missing, f"mutations AWS saw with no history row: {missing}"
    with sqlite3.connect(tmp_path / "history.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def mutations_seen(aws: FaultyAws) -> list[tuple[str, str]]:
    """(history action, target) of every mutation request the server received from homeostat."""
    out = []
    for seen in aws.faults.seen():
        if seen.operation in {"CreateDBClusterSnapshot", "DeleteDBClusterSnapshot"}:
            out.append((ROW_OF[seen.operation], str(seen.params["DBClusterSnapshotIdentifier"])))
        elif seen.operation in {"DisableAlarmActions", "EnableAlarmActions"}:
            out.extend((ROW_OF[seen.operation], str(name)) for name in seen.params["AlarmNames"])
    return out


def history_rows(history_url: str, env: dict[str, str]) -> list[dict[str, Any]]:
    result = run_cli("history", "--json", "--limit", "100000", "--history", history_url, env=env)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
