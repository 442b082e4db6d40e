"""End to end: `run --once` applies the Sunday window's pending system update, once.

The real CLI (a subprocess, its clock frozen inside the window) talks to moto's server
behind `local_maintenance.PendingMaintenance`, which answers the two operations moto lacks
in AWS's XML shape; nothing is injected into the homeostat process. A second `run --once`
in the same occurrence (a restart) sends nothing: the history database is the memory.
"""

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from homeostat.operator.local_aws import LocalAws
from homeostat.operator.local_maintenance import PendingMaintenance

from .conftest import MotoServer, run_cli
from .faults import _record_homeostat
from .snapshot_helpers import create_cluster

CLUSTER = "omnirapeutic-production"
SUNDAY = datetime(2026, 12, 6, 2, tzinfo=UTC)
WINDOW = f"""\
apiVersion: homeostat/v1
kind: MaintenanceWindow
metadata: {{name: sunday-maintenance}}
spec:
  schedule: "0 2 * * SUN"
  duration: 4h
  applyPendingMaintenance:
    - dbClusterIdentifier: {CLUSTER}
      actions: [system-update]
"""

pytestmark = pytest.mark.e2e


@pytest.fixture
def aws() -> Iterator[tuple[MotoServer, PendingMaintenance]]:
    stubs: list[PendingMaintenance] = []

    def wrap(app: Any) -> PendingMaintenance:
        stubs.append(PendingMaintenance(app))
        return stubs[-1]

    server = LocalAws(on_request=_record_homeostat, middleware=wrap).start()
    moto = MotoServer(server.url, server)
    # moto's backends are global to the process: an earlier test's cluster of the same name (and
    # its automated snapshot, named to the minute) would make this one's create fail.
    moto.reset()
    try:
        yield moto, stubs[0]
    finally:
        server.stop()


def test_run_once_applies_the_pending_system_update_once_per_occurrence(
    aws: tuple[MotoServer, PendingMaintenance], tmp_path: Path
) -> None:
    moto, pending = aws
    rds = moto.client("rds")
    create_cluster(rds, CLUSTER)
    [cluster] = rds.describe_db_clusters(DBClusterIdentifier=CLUSTER)["DBClusters"]
    arn = cluster["DBClusterArn"]
    # Still listed after the application here, as AWS lists it until the cluster applied it.
    pending.add(arn, "system-update", ForcedApplyDate=SUNDAY + timedelta(days=30))
    pending.add(arn, "db-upgrade")
    state = tmp_path / "desired"
    state.mkdir()
    (state / "maintenance.yaml").write_text(WINDOW)
    env = moto.env(
        HOMEOSTAT_DESIRED_STATE=str(state),
        HOMEOSTAT_HISTORY=f"sqlite:///{tmp_path / 'history.db'}",
        HOMEOSTAT_LOG_FORMAT="json",
    )

    before = run_cli("plan", "--json", env=env, now=SUNDAY - timedelta(days=2))
    assert before.returncode == 0, before.stdout + before.stderr
    [window] = json.loads(before.stdout)["resources"]
    assert (
        f"pending maintenance on {CLUSTER}: system-update (forced on 2027-01-05T02:00:00Z), db-upgrade"
        in (window["notes"])
    )
    assert pending.applied == []

    inside = SUNDAY + timedelta(minutes=5)
    applied = run_cli("run", "--once", env=env, now=inside)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert pending.applied == [
        {"ResourceIdentifier": arn, "ApplyAction": "system-update", "OptInType": "immediate"}
    ]
    pending.add(arn, "system-update")  # AWS still lists it while the cluster applies it

    again = run_cli("run", "--once", env=env, now=inside + timedelta(hours=1))
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(pending.applied) == 1

    history = run_cli("history", "--json", env=env)
    rows = [json.loads(line) for line in history.stdout.splitlines() if line.strip()]
    assert [(r["kind"], r["name"], r["action"], r["target"], r["outcome"]) for r in rows] == [
        ("MaintenanceWindow", "sunday-maintenance", "apply_pending_maintenance", CLUSTER, "applied")
    ]
    assert rows[0]["after"]["occurrence"] == "sunday-maintenance@2026-12-06T02:00:00Z"
