"""ECS benchmark: 100 and 1000 services across 10 clusters, 10% drifted; one `run --once` each.

Prints per pass: the pass wall time, the whole process's wall and CPU time and
peak RSS (homeostat alone: it runs as a child process, moto in this one), and
AWS calls per operation against the floor of contract section 6.

    .venv/bin/python benchmarks/ecs.py [--sizes 100,1000]
"""

import argparse
import math
import tempfile
from pathlib import Path

from benchmarks.common import CountingAws, report_calls, run_once

CLUSTERS = 10


def seed(aws: CountingAws, total: int, desired: Path) -> dict[str, dict[str, int]]:
    """`total` services at 2 tasks in CLUSTERS clusters, every tenth declared at 3 in
    desired/services.yaml; the declared count of each service, by cluster."""
    ecs = aws.client("ecs")
    ecs.register_task_definition(
        family="bench", containerDefinitions=[{"name": "a", "image": "x", "memory": 64}]
    )
    documents = []
    wanted: dict[str, dict[str, int]] = {}
    for index in range(total):
        cluster = f"bench-{index % CLUSTERS}"
        if index < CLUSTERS:
            ecs.create_cluster(clusterName=cluster)
        name = f"svc-{index:05d}"
        ecs.create_service(cluster=cluster, serviceName=name, taskDefinition="bench:1", desiredCount=2)
        want = 3 if index % 10 == 0 else 2
        wanted.setdefault(cluster, {})[name] = want
        documents.append(
            f"apiVersion: homeostat/v1\nkind: ECSService\nmetadata: {{name: {name}}}\n"
            f"spec: {{cluster: {cluster}, service: {name}, desiredCount: {want}}}\n"
        )
    (desired / "services.yaml").write_text("---\n".join(documents))
    return wanted


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,1000")
    sizes = [int(s) for s in parser.parse_args().sizes.split(",")]
    for total in sizes:
        aws = CountingAws()
        try:
            desired = Path(tempfile.mkdtemp(prefix="homeostat-bench-ecs-"))
            wanted = seed(aws, total, desired)
            drifted = sum(1 for services in wanted.values() for want in services.values() if want != 2)
            figures = run_once(aws, desired)
            per_cluster = math.ceil(total / CLUSTERS)
            floor = {"DescribeServices": CLUSTERS * math.ceil(per_cluster / 10), "UpdateService": drifted}
            print(f"ECS: {total} services in {CLUSTERS} clusters, {drifted} drifted")
            print(
                f"  pass {figures.pass_seconds:.2f}s; process {figures.process_seconds:.2f}s wall, "
                f"{figures.cpu_seconds:.2f}s CPU, peak RSS {figures.peak_rss_mb:.0f} MB"
            )
            report_calls(figures.calls, floor)
        finally:
            aws.stop()


if __name__ == "__main__":
    main()
