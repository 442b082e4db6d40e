"""Snapshot retention benchmark: 5,000 manual snapshots over 10 Aurora clusters, 300 expired.

One SnapshotRetention per cluster (500 snapshots each, 30 expired, a slot
due 5 minutes ago). Two `run --once` passes: the first deletes the 300
expired snapshots and takes the 10 slots; the second finds nothing to do.
Prints per pass: the pass wall time, the process's wall and CPU time and
peak RSS (homeostat alone: it runs as a child process, moto in this one),
and AWS calls per operation against the floor of contract section 6.

moto answers DescribeDBClusterSnapshots in one page whatever MaxRecords
says, so the listing count here is one call per cluster; against AWS, at
100 per page, it is the `AWS floor` printed beside it. The snapshots are
seeded straight into moto's in-process backend (5,000 API calls would
dominate the run), with MOTO_RDS_SNAPSHOT_LIMIT raised above its 1,000.

    .venv/bin/python -m benchmarks.snapshots
"""

import math
import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.common import REGION, CountingAws, report_calls, run_once

CLUSTERS = 10
SNAPSHOTS = 5000
EXPIRED = 300
PREFIX = "bench-manual-"
ACCOUNT = "123456789012"  # moto's default account


def seed(aws: CountingAws, desired: Path, now: datetime) -> None:
    from moto.rds.models import rds_backends

    os.environ["MOTO_RDS_SNAPSHOT_LIMIT"] = str(SNAPSHOTS * 10)  # read by moto at each create
    rds = aws.client("rds")
    backend = rds_backends[ACCOUNT][REGION]
    slot = (now - timedelta(minutes=5)).replace(second=0, microsecond=0)
    per_cluster = SNAPSHOTS // CLUSTERS
    expired_per_cluster = EXPIRED // CLUSTERS
    documents = []
    for c in range(CLUSTERS):
        cluster = f"bench-{c}"
        rds.create_db_cluster(
            DBClusterIdentifier=cluster,
            Engine="aurora-postgresql",
            MasterUsername="admin",
            MasterUserPassword="password123",
        )
        for i in range(per_cluster):
            snapshot_id = f"{PREFIX}{c}-{i:04d}"
            record = backend.create_db_cluster_snapshot(cluster, snapshot_id)
            # Expired ones 8-9 days old, the rest within the last 6 days (naive UTC, as moto keeps it).
            age = (
                timedelta(days=8, minutes=i)
                if i < expired_per_cluster
                else timedelta(days=6) * (i / per_cluster)
            )
            record.created = (now - age).astimezone(UTC).replace(tzinfo=None)
        documents.append(
            "apiVersion: homeostat/v1\nkind: SnapshotRetention\n"
            f"metadata: {{name: bench-{c}}}\nspec:\n"
            f"  dbClusterIdentifier: {cluster}\n  snapshotPrefix: {PREFIX}{c}-\n"
            f'  schedule: "{slot.minute} {slot.hour} * * *"\n  startingDeadline: 1h\n'
            "  retention: {maxAge: 7d, minKeep: 1, maxDeletionsPerRun: 50}\n"
        )
    (desired / "snapshots.yaml").write_text("---\n".join(documents))


def main() -> None:
    aws = CountingAws()
    try:
        desired = Path(tempfile.mkdtemp(prefix="homeostat-bench-snapshots-"))
        seed(aws, desired, datetime.now(UTC))
        pages_per_cluster = math.ceil((SNAPSHOTS // CLUSTERS) / 100)
        print(f"Snapshots: {SNAPSHOTS} in {CLUSTERS} clusters, {EXPIRED} expired, {CLUSTERS} slots due")
        floors = [
            {
                "DescribeDBClusters": 1,
                "DescribeDBClusterSnapshots": CLUSTERS,
                "DeleteDBClusterSnapshot": EXPIRED,
                "CreateDBClusterSnapshot": CLUSTERS,
            },
            {"DescribeDBClusters": 1, "DescribeDBClusterSnapshots": CLUSTERS},
        ]
        for label, floor in zip(("first pass", "second pass (in sync)"), floors, strict=True):
            figures = run_once(aws, desired)
            print(f"  {label}:")
            print(
                f"    pass {figures.pass_seconds:.2f}s; process {figures.process_seconds:.2f}s wall, "
                f"{figures.cpu_seconds:.2f}s CPU, peak RSS {figures.peak_rss_mb:.0f} MB"
            )
            report_calls(figures.calls, floor)
            print(
                f"    (DescribeDBClusterSnapshots against AWS at 100 per page: "
                f"{CLUSTERS * pages_per_cluster}; moto answers in one page)"
            )
    finally:
        aws.stop()


if __name__ == "__main__":
    main()
