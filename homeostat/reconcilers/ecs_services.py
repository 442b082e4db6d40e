"""ECS service I/O of the ECSService kind: DescribeServices and the autoscaler's targets.

Observe side only, and no decision: DescribeServices 10 services per call per cluster
(AWS's limit), the batches sent concurrently (the shared budget paces them), each cluster's
answers merged into its services and its failures; Application Auto Scaling
DescribeScalableTargets, 50 resource ids per call, paged, its batches sent concurrently too,
or one listing of the region's ECS targets when that is fewer calls (`list_whole_namespace`).
A failed read is returned as a value for the kind module to turn into the error of the
resources it covers (fail closed).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from homeostat.reconcilers.aws import aws_errors, chunks, describe_error, fan_out, pages

DESCRIBE_SERVICES_BATCH = 10
SCALABLE_TARGETS_BATCH = 50
SCALABLE_DIMENSION = "ecs:service:DesiredCount"


@dataclass(frozen=True, slots=True)
class ScalableTarget:
    min_capacity: int
    max_capacity: int


@dataclass(frozen=True, slots=True)
class ClusterServices:
    """One cluster's DescribeServices answers: each service's item by name, the names AWS listed
    as failures with their reason, or the error of a batch (then nothing of the cluster is known)."""

    live: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    failures: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None


def describe_services(ecs: Any, services: Mapping[str, Sequence[str]]) -> dict[str, ClusterServices]:
    """Per cluster, its services as DescribeServices answers them (see ClusterServices)."""
    work = [
        (cluster, batch)
        for cluster, names in services.items()
        for batch in chunks(sorted(set(names)), DESCRIBE_SERVICES_BATCH)
    ]

    def describe(item: tuple[str, list[str]]) -> Mapping[str, Any] | Exception:
        try:
            answer: Mapping[str, Any] = ecs.describe_services(cluster=item[0], services=item[1])
        except aws_errors() as exc:
            return exc
        return answer

    answers: dict[str, list[Mapping[str, Any] | Exception]] = {cluster: [] for cluster in services}
    for (cluster, _), answer in zip(work, fan_out(describe, work), strict=True):
        answers[cluster].append(answer)
    found: dict[str, ClusterServices] = {}
    for cluster, responses in answers.items():
        failed = [a for a in responses if isinstance(a, Exception)]
        if failed:
            found[cluster] = ClusterServices(error=f"cluster {cluster}: {describe_error(failed[0])}")
            continue
        live: dict[str, Mapping[str, Any]] = {}
        failures: dict[str, str] = {}
        for response in (a for a in responses if not isinstance(a, Exception)):
            for item in response.get("services", []):
                live[item["serviceName"]] = item
            for failure in response.get("failures", []):
                arn = str(failure.get("arn", ""))
                failures[arn.rsplit("/", 1)[-1]] = str(failure.get("reason", "unknown"))
        found[cluster] = ClusterServices(live, failures)
    return found


@dataclass(frozen=True, slots=True)
class TargetRead:
    """The scalable targets of a group's services by resource id, or the error of the read;
    `listed`: how many ECS targets the region has, when the read listed them all."""

    targets: Mapping[str, ScalableTarget]
    error: str | None = None
    listed: int | None = None


def list_whole_namespace(ids: int, listed_before: int | None) -> bool:
    """Pure: read the region's ECS targets with one paged listing (a page per 50 targets of the
    region) rather than by resource id (a call per 50 services), when that costs fewer calls:
    a fleet of 1,000 services with a few autoscaled ones is one call, not 20. Before any
    listing, one page is expected; a region found to hold more targets is read by id again."""
    by_id = -(-ids // SCALABLE_TARGETS_BATCH)
    listing = -(-max(listed_before or 0, 1) // SCALABLE_TARGETS_BATCH)
    return listing < by_id


def scalable_targets(client: Any, ids: Sequence[str], *, whole_namespace: bool = False) -> TargetRead:
    """Scalable targets by resource id, or the error of the read. A failed read is an error for
    every service: without it nobody knows whether an autoscaler owns the count (fail closed).
    By id, the batches are independent reads, sent concurrently as DescribeServices' are; with
    `whole_namespace`, one paged listing of the region's ECS targets, kept to `ids`."""
    wanted = set(ids)

    def read(batch: list[str] | None) -> dict[str, ScalableTarget]:
        found: dict[str, ScalableTarget] = {}
        scope: dict[str, Any] = {} if batch is None else {"ResourceIds": batch}
        for response in pages(
            client.describe_scalable_targets,
            "NextToken",
            ServiceNamespace="ecs",
            ScalableDimension=SCALABLE_DIMENSION,
            **scope,
        ):
            for item in response.get("ScalableTargets", []):
                found[item["ResourceId"]] = ScalableTarget(int(item["MinCapacity"]), int(item["MaxCapacity"]))
        return found

    try:
        parts = (
            [read(None)] if whole_namespace else fan_out(read, chunks(sorted(wanted), SCALABLE_TARGETS_BATCH))
        )
    except aws_errors() as exc:
        return TargetRead({}, f"cannot read Application Auto Scaling targets: {describe_error(exc)}")
    every = {resource: target for part in parts for resource, target in part.items()}
    return TargetRead(
        {resource: target for resource, target in every.items() if resource in wanted},
        listed=len(every) if whole_namespace else None,
    )


def register_scalable_target(client: Any, params: Mapping[str, Any]) -> None:
    """RegisterScalableTarget with the bounds of one planned action."""
    client.register_scalable_target(
        ServiceNamespace="ecs",
        ScalableDimension=SCALABLE_DIMENSION,
        ResourceId=params["resourceId"],
        MinCapacity=params["minCapacity"],
        MaxCapacity=params["maxCapacity"],
    )


def primary_rollout(item: Mapping[str, Any]) -> str | None:
    """The rolloutState of the service's PRIMARY deployment (None when AWS gives none)."""
    for deployment in item.get("deployments") or ():
        if deployment.get("status") == "PRIMARY":
            state = deployment.get("rolloutState")
            return str(state) if state else None
    return None


def not_active(
    service: str, cluster: str, item: Mapping[str, Any] | None, failures: Mapping[str, str]
) -> str | None:
    """Why a described service must not be touched (missing, INACTIVE, DRAINING), or None. Pure.

    moto keeps every service ACTIVE until it is deleted, so DRAINING is tested with a stubbed
    DescribeServices response."""
    if item is None or item.get("status") == "INACTIVE":
        reason = failures.get(service, "INACTIVE" if item else "MISSING")
        return f"service {service} not found in cluster {cluster} ({reason})"
    if item.get("status") != "ACTIVE":
        status = item.get("status")
        return f"service {service} in cluster {cluster} is {status}, not ACTIVE: no UpdateService is sent"
    return None
