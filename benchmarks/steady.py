"""The whole fleet in one process: 1,000 services, 10,000 alarms and 5,000 snapshots (issue 15, item 3).

    .venv/bin/python -m benchmarks.steady

One desired state holds the three benchmarks' manifests (benchmarks/ecs.py, alarms.py and
snapshots.py seed moto the same way here); `run --once` runs as a child process twice: first
with the seeded drift, then in sync. Prints each pass's wall time, the process's wall and CPU
time and peak RSS (VmHWM of homeostat alone; moto runs in this process), and the AWS calls of
the in-sync pass against the floor (contract section 6: one listing per batch). DescribeAlarms
is paged as AWS pages it (100 per page): moto would answer all 10,000 at once, and the memory
figure would be moto's page. The goal of the issue: peak RSS under 120 MB. No test asserts it.
"""

import tempfile
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import alarms, ecs, snapshots
from benchmarks.common import CountingAws, page_alarms_like_aws, report_calls, run_once

SERVICES = 1000
RSS_GOAL_MB = 120


def main() -> None:
    page_alarms_like_aws()
    aws = CountingAws()
    try:
        desired = Path(tempfile.mkdtemp(prefix="homeostat-bench-steady-"))
        ecs.seed(aws, SERVICES, desired)
        snapshots.seed(aws, desired, datetime.now(UTC))
        alarms.seed()
        alarms.set_enabled(alarms.DB_PREFIX, False)
        alarms.write(desired, '  schedule: "0 2 * * SUN"\n  duration: 4h\n')
        print(
            f"One process: {SERVICES} services, {alarms.ALARMS} alarms ({alarms.FLIP} disabled by hand), "
            f"{snapshots.SNAPSHOTS} snapshots ({snapshots.EXPIRED} expired)"
        )
        in_sync_floor = {
            "DescribeServices": SERVICES // 10,
            "DescribeAlarms": alarms.ALARMS // 100,
            "DescribeDBClusterSnapshots": snapshots.CLUSTERS,
        }
        for label in ("drifted", "in sync"):
            figures = run_once(aws, desired)
            print(
                f"  {label}: pass {figures.pass_seconds:.2f} s; process {figures.process_seconds:.2f} s "
                f"wall, {figures.cpu_seconds:.2f} s CPU, peak RSS {figures.peak_rss_mb:.0f} MB "
                f"(goal under {RSS_GOAL_MB} MB)"
            )
            if label == "in sync":
                report_calls(figures.calls, in_sync_floor)
        print(
            "  (DescribeAlarms is paged at 100 as AWS pages it, by benchmarks.common.page_alarms_like_aws;"
            " moto answers the other listings in one page)"
        )
    finally:
        aws.stop()


if __name__ == "__main__":
    main()
