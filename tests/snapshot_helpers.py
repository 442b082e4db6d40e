"""Builders shared by the SnapshotRetention tests: manifests, resources and moto's stored creation times."""

from datetime import UTC, datetime
from typing import Any

from homeostat.desired_state.state import Resource, Source
from homeostat.reconcilers.snapshot_retention import SnapshotRetention, SnapshotRetentionSpec

CLUSTER = "aurora-prod"
PREFIX = "prod-manual-"
ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"


def manifest(name: str = "aurora", **spec: Any) -> SnapshotRetention:
    retention = {"maxAge": "7d", "minKeep": 1, "maxDeletionsPerRun": 20}
    retention.update(spec.pop("retention", {}))
    body = {
        "dbClusterIdentifier": CLUSTER,
        "snapshotPrefix": PREFIX,
        "retention": retention,
        "protect": ["prod-emergency-*"],
        **spec,
    }
    return SnapshotRetention.model_validate(
        {"apiVersion": "homeostat/v1", "kind": "SnapshotRetention", "metadata": {"name": name}, "spec": body}
    )


def spec_of(**spec: Any) -> SnapshotRetentionSpec:
    return manifest(**spec).spec


def resource(name: str = "aurora", **spec: Any) -> Resource[SnapshotRetention]:
    return Resource(manifest(name, **spec), Source("snapshots.yaml", 1))


def manifest_yaml(name: str, cluster: str, schedule: str | None, **extra: str) -> str:
    lines = [
        "apiVersion: homeostat/v1",
        "kind: SnapshotRetention",
        f"metadata: {{name: {name}}}",
        "spec:",
        f"  dbClusterIdentifier: {cluster}",
        f"  snapshotPrefix: {PREFIX}",
        "  retention: {maxAge: 7d, minKeep: 1, maxDeletionsPerRun: 20}",
        '  protect: ["prod-emergency-*"]',
    ]
    if schedule is not None:
        lines.append(f'  schedule: "{schedule}"')
    lines.extend(f"  {key}: {value}" for key, value in extra.items())
    return "\n".join(lines) + "\n"


def set_created(snapshot_id: str, created: datetime, region: str = REGION) -> None:
    """Backdate a cluster snapshot in moto's in-process backend.

    moto stamps SnapshotCreateTime with the time of creation and no API sets
    it, so tests overwrite the stored record's `created` (naive UTC, as moto
    keeps it). This works under `mock_aws` and for the threaded server alike,
    because both serve from the same in-process backends.
    """
    from moto.rds.models import rds_backends

    record = rds_backends[ACCOUNT][region].cluster_snapshots[snapshot_id]
    record.created = created.astimezone(UTC).replace(tzinfo=None)


def create_cluster(rds: Any, cluster: str = CLUSTER) -> None:
    rds.create_db_cluster(
        DBClusterIdentifier=cluster,
        Engine="aurora-postgresql",
        MasterUsername="admin",
        MasterUserPassword="password123",
    )


def seed_snapshot(rds: Any, snapshot_id: str, created: datetime, cluster: str = CLUSTER) -> None:
    rds.create_db_cluster_snapshot(DBClusterIdentifier=cluster, DBClusterSnapshotIdentifier=snapshot_id)
    set_created(snapshot_id, created)
