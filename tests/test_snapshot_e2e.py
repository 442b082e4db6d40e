"""End to end: SnapshotRetention through the real `homeostat` CLI (a subprocess) against moto's server.

Ages: the CLI runs in another process, so it cannot reach moto's backend, but
moto's threaded server (the `moto_server` fixture) runs inside this test
process. The test therefore creates snapshots through the API and then
backdates them by editing `moto.rds.models.rds_backends[...]` directly
(`snapshot_helpers.set_created`); the CLI sees the edited SnapshotCreateTime
over HTTP like any other answer.

Slots: the CLI reads the real clock, so each test writes a daily schedule
whose slot lies a few minutes (or hours) before now.
"""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from .conftest import MotoServer, run_cli
from .snapshot_helpers import CLUSTER, PREFIX, create_cluster, manifest_yaml, seed_snapshot

pytestmark = pytest.mark.e2e

DAY = timedelta(days=1)


def daily_at(instant: datetime) -> str:
    """A UTC daily cron firing at the minute of `instant`."""
    return f"{instant.minute} {instant.hour} * * *"


def setup(moto: MotoServer, tmp_path: Path, slot: datetime) -> dict[str, str]:
    rds = moto.client("rds")
    create_cluster(rds)
    now = datetime.now(UTC)
    seed_snapshot(rds, f"{PREFIX}old", now - 10 * DAY)
    seed_snapshot(rds, f"{PREFIX}recent", now - DAY)
    seed_snapshot(rds, "prod-emergency-20260101-1200", now - 60 * DAY)
    seed_snapshot(rds, "unrelated-backup", now - 60 * DAY)
    desired = tmp_path / "desired"
    desired.mkdir()
    (desired / "snapshots.yaml").write_text(
        manifest_yaml("aurora", CLUSTER, daily_at(slot), timeZone="UTC", startingDeadline="1h")
    )
    return moto.env(
        HOMEOSTAT_DESIRED_STATE=str(desired),
        HOMEOSTAT_HISTORY=f"sqlite:///{tmp_path / 'history.db'}",
        HOMEOSTAT_LOG_FORMAT="json",
    )


def manual_snapshots(moto: MotoServer) -> set[str]:
    answer = moto.client("rds").describe_db_cluster_snapshots(
        DBClusterIdentifier=CLUSTER, SnapshotType="manual"
    )
    return {s["DBClusterSnapshotIdentifier"] for s in answer["DBClusterSnapshots"]}


def history(env: dict[str, str]) -> list[dict[str, Any]]:
    result = run_cli("history", "--json", env=env)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_run_once_takes_the_slot_once_and_deletes_only_expired_owned_snapshots(
    moto_server: MotoServer, tmp_path: Path
) -> None:
    """A slot 10 minutes ago is taken by `run --once` and not again by a second run; only the expired owned
    snapshot is deleted, while the emergency and unrelated ones stay."""
    slot = (datetime.now(UTC) - timedelta(minutes=10)).replace(second=0, microsecond=0)
    env = setup(moto_server, tmp_path, slot)
    slot_id = f"{PREFIX}{slot:%Y%m%d-%H%M}"

    plan = run_cli("plan", "--json", env=env)
    assert plan.returncode == 2, plan.stderr
    (resource,) = json.loads(plan.stdout)["resources"]
    actions = {(a["action"], a["target"]): a["reason"] for a in resource["actions"]}
    assert set(actions) == {("delete_snapshot", f"{PREFIX}old"), ("create_snapshot", slot_id)}
    assert actions[("delete_snapshot", f"{PREFIX}old")].startswith("expired: created ")
    assert actions[("delete_snapshot", f"{PREFIX}old")].endswith(", older than maxAge 7d")
    assert any(note.startswith(f"next slot {slot + DAY:%Y-%m-%dT%H:%M}Z") for note in resource["notes"])

    first = run_cli("run", "--once", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert manual_snapshots(moto_server) == {
        f"{PREFIX}recent",
        slot_id,
        "prod-emergency-20260101-1200",
        "unrelated-backup",
    }

    second = run_cli("run", "--once", env=env)  # a restart right after the slot
    assert second.returncode == 0, second.stdout + second.stderr
    assert len(manual_snapshots(moto_server)) == 4
    rows = history(env)
    assert sorted((r["action"], r["outcome"]) for r in rows) == [
        ("create_snapshot", "applied"),
        ("delete_snapshot", "applied"),
    ]
    assert run_cli("plan", env=env).returncode == 0


def test_a_slot_missed_beyond_the_deadline_is_reported_not_taken(
    moto_server: MotoServer, tmp_path: Path
) -> None:
    """A slot 3 hours ago with a 1h deadline is not taken, is recorded as missed once, and `plan` exits 0."""
    slot = (datetime.now(UTC) - timedelta(hours=3)).replace(second=0, microsecond=0)
    env = setup(moto_server, tmp_path, slot)
    for _ in range(2):
        run = run_cli("run", "--once", env=env)
        assert run.returncode == 0, run.stdout + run.stderr
    assert f"{PREFIX}{slot:%Y%m%d-%H%M}" not in manual_snapshots(moto_server)
    missed = [row for row in history(env) if row["action"] == "create_snapshot"]
    assert len(missed) == 1, missed
    assert missed[0]["outcome"] == "failed"
    assert missed[0]["target"] == f"{PREFIX}{slot:%Y%m%d-%H%M}"
    assert missed[0]["error"].startswith("missed: beyond startingDeadline 1h")
    plan = run_cli("plan", "--json", env=env)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    (resource,) = json.loads(plan.stdout)["resources"]
    assert resource["notes"][0].startswith(f"missed slot {slot:%Y-%m-%dT%H:%M}Z: 3h")
    assert resource["notes"][0].endswith("beyond startingDeadline 1h; not taken")


def test_the_daemon_takes_the_slot_at_startup_and_not_again_after_a_restart(
    moto_server: MotoServer, tmp_path: Path
) -> None:
    """The daemon's first pass takes a slot inside the deadline and exports the snapshot gauges; a
    restarted daemon does not take it again."""
    from .daemon_helpers import DaemonProcess

    slot = (datetime.now(UTC) - timedelta(minutes=5)).replace(second=0, microsecond=0)
    env = setup(moto_server, tmp_path, slot)
    desired = Path(env["HOMEOSTAT_DESIRED_STATE"])
    for _ in range(2):
        daemon = DaemonProcess(moto_server, desired, env["HOMEOSTAT_HISTORY"], env=env, log_dir=tmp_path)
        try:
            daemon.wait_ready()
            metrics = daemon.get("/metrics").text
        finally:
            assert daemon.terminate() == 0
        assert f"{PREFIX}{slot:%Y%m%d-%H%M}" in manual_snapshots(moto_server)
        assert 'homeostat_snapshots_owned{name="aurora"}' in metrics
        assert 'homeostat_snapshot_newest_age_seconds{name="aurora"}' in metrics
    assert sorted(r["action"] for r in history(env)) == ["create_snapshot", "delete_snapshot"]
