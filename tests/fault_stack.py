"""A small stack for the fault end-to-end tests: work for every kind in one pass, and its check."""

from datetime import datetime, timedelta
from pathlib import Path

from tests.alarm_helpers import actions_enabled, alarm_actions_yaml, put_alarms
from tests.daemon_helpers import desired_count, seed_services, service_manifest
from tests.faults import FaultyAws
from tests.snapshot_helpers import CLUSTER, PREFIX, create_cluster, manifest_yaml, seed_snapshot

STACK_SERVICES = {"api": 1, "web": 1}  # seeded counts; the manifests want 3
STACK_ALARMS = [f"prod-alarm-{i}" for i in range(4)]  # seeded disabled; AlarmActions wants them enabled


def seed_stack(aws: FaultyAws, desired: Path, now: datetime) -> datetime:
    """ECS services with drifted counts, a cluster with one expired owned snapshot and a slot to take,
    and disabled alarms that an AlarmActions wants enabled: work for every kind in one pass. Returns
    the slot (a few minutes before `now`, inside the default 1h deadline)."""
    seed_services(aws.moto, STACK_SERVICES)
    rds = aws.moto.client("rds")
    create_cluster(rds)
    seed_snapshot(rds, f"{PREFIX}expired", now - timedelta(days=10))
    seed_snapshot(rds, f"{PREFIX}recent", now - timedelta(days=1))
    put_alarms(aws.moto.client("cloudwatch"), STACK_ALARMS, enabled=False)
    desired.mkdir(parents=True, exist_ok=True)
    (desired / "services.yaml").write_text("---\n".join(service_manifest(n, 3) for n in STACK_SERVICES))
    slot = (now - timedelta(minutes=3)).replace(second=0, microsecond=0)
    daily = f"{slot.minute} {slot.hour} * * *"
    (desired / "snapshots.yaml").write_text(manifest_yaml("aurora", CLUSTER, daily))
    (desired / "alarms.yaml").write_text(alarm_actions_yaml("prod-alarms", "alarmNamePrefix: prod-alarm-"))
    return slot


def stack_converged(aws: FaultyAws, slot: datetime) -> dict[str, bool]:
    """Which parts of the stack are at their desired state, read from moto without faults."""

    ecs = aws.moto.client("ecs")
    rds = aws.moto.client("rds")
    answer = rds.describe_db_cluster_snapshots(DBClusterIdentifier=CLUSTER, SnapshotType="manual")
    snapshots = {s["DBClusterSnapshotIdentifier"] for s in answer["DBClusterSnapshots"]}
    return {
        "services": all(desired_count(ecs, name) == 3 for name in STACK_SERVICES),
        "snapshots": snapshots == {f"{PREFIX}recent", f"{PREFIX}{slot:%Y%m%d-%H%M}"},
        "alarms": set(actions_enabled(aws.moto.client("cloudwatch"), "prod-alarm-").values()) == {True},
    }
