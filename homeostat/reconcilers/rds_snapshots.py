"""RDS snapshot I/O of the SnapshotRetention kind: listings that fail closed, and the owner check.

Observe side: which named clusters exist (`rds_clusters.describe_clusters`, shared with
AuroraCluster), and per cluster DescribeDBClusterSnapshots
(SnapshotType=manual, MaxRecords=100) following Marker to the end. Apply side: who owns
a slot snapshot that already exists. Nothing here decides what to create or delete.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homeostat.desired_state.identifiers import DBClusterId, SnapshotId
from homeostat.desired_state.instants import as_utc
from homeostat.reconcilers.actions import Action
from homeostat.reconcilers.aws import aws_errors, describe_error, pages
from homeostat.reconcilers.rds_clusters import describe_clusters
from homeostat.reconcilers.snapshot_policy import ObservedSnapshot

PAGE_SIZE = 100  # DescribeDBClusterSnapshots accepts 20-100


@dataclass(frozen=True, slots=True)
class ClusterSnapshots:
    """The manual snapshots of one existing cluster; `listing_error` set when the
    listing failed or was cut short, in which case `snapshots` may be partial.
    `cluster_status` is the cluster's Status from the DescribeDBClusters that checked it exists."""

    cluster: DBClusterId
    snapshots: tuple[ObservedSnapshot, ...]
    listing_error: str | None = None
    cluster_status: str | None = None


def _aware(value: Any) -> datetime | None:
    return as_utc(value) if isinstance(value, datetime) else None


def snapshot_of(item: Mapping[str, Any]) -> ObservedSnapshot:
    """An ObservedSnapshot from one DBClusterSnapshots entry of the AWS response."""
    return ObservedSnapshot(
        identifier=SnapshotId(str(item["DBClusterSnapshotIdentifier"])),
        cluster=DBClusterId(str(item.get("DBClusterIdentifier", ""))),
        snapshot_type=str(item.get("SnapshotType", "")),
        status=str(item.get("Status", "")),
        created=_aware(item.get("SnapshotCreateTime")),
    )


def list_cluster_snapshots(rds: Any, cluster: str) -> ClusterSnapshots:
    """Every manual snapshot of a cluster, 100 per page following Marker; fails closed.

    Any error on any page, or a Marker that repeats, marks the listing as
    incomplete; what was read so far is kept only to spot an existing slot.
    """
    found: list[ObservedSnapshot] = []
    listing = pages(
        rds.describe_db_cluster_snapshots,
        "Marker",
        DBClusterIdentifier=cluster,
        SnapshotType="manual",
        MaxRecords=PAGE_SIZE,
    )
    page = 1
    try:
        for response in listing:
            found.extend(snapshot_of(item) for item in response.get("DBClusterSnapshots", []))
            page += 1
    except aws_errors() as exc:  # an error on any page, or a repeated Marker (ListingCutShort)
        return ClusterSnapshots(
            DBClusterId(cluster),
            tuple(found),
            f"listing snapshots of cluster {cluster} failed on page {page}: {describe_error(exc)}",
        )
    return ClusterSnapshots(DBClusterId(cluster), tuple(found))


def existing_clusters(rds: Any, clusters: Sequence[str]) -> dict[str, str | None]:
    """The Status of each named cluster that exists, by lower-cased identifier (raises on AWS errors)."""
    return {
        name: str(item["Status"]) if item.get("Status") else None
        for name, item in describe_clusters(rds, clusters).items()
    }


def other_owner(rds: Any, action: Action) -> str | None:
    """None when the existing snapshot of the slot's name belongs to the action's cluster, else why not."""
    cluster = str(action.params["DBClusterIdentifier"])
    try:
        found = rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=action.target)
    except aws_errors() as exc:
        return f"snapshot {action.target} already exists and cannot be checked: {describe_error(exc)}"
    owners = {str(s.get("DBClusterIdentifier", "")).lower() for s in found.get("DBClusterSnapshots", [])}
    if cluster.lower() in owners:
        return None
    return (
        f"snapshot {action.target} already exists for another DB cluster ({', '.join(sorted(owners))}); "
        f"no snapshot of {cluster} was taken for this slot"
    )
