"""ECSService: desiredCount and task definition of ECS services, autoscaler-aware.

Observe: DescribeServices, 10 services per call per cluster (AWS's limit), and
Application Auto Scaling DescribeScalableTargets, 50 resource ids per call.
Diff: one UpdateService per drifted service carrying every drifted field; an
autoscaled service whose manifest declares desiredCount is a Conflict (the
autoscaler owns the count; nothing is changed); declared `autoscaling` bounds
are reconciled on the scalable target with RegisterScalableTarget.
"""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from homeostat.desired_state.identifiers import Kind
from homeostat.desired_state.models import ECSService, ECSServiceSpec
from homeostat.desired_state.state import DesiredState, Resource
from homeostat.reconcilers.actions import Action, ApplyResult, ObserveError, Plan
from homeostat.reconcilers.aws import AWS_ERRORS, AwsClients, chunks, describe_error, pages

DESCRIBE_SERVICES_BATCH = 10
SCALABLE_TARGETS_BATCH = 50
SCALABLE_DIMENSION = "ecs:service:DesiredCount"
UPDATE_SERVICE = "update_service"
UPDATE_SCALABLE_TARGET = "update_scalable_target"


@dataclass(frozen=True, slots=True)
class ScalableTarget:
    min_capacity: int
    max_capacity: int


@dataclass(frozen=True, slots=True)
class ServiceObservation:
    """What AWS says of one service (task definition as the full ARN)."""

    cluster: str
    service: str
    desired_count: int
    task_definition: str
    scalable_target: ScalableTarget | None


def cluster_name(cluster: str) -> str:
    return cluster.rsplit("/", 1)[-1] if cluster.startswith("arn:") else cluster


def resource_id(spec: ECSServiceSpec) -> str:
    """Application Auto Scaling's id of an ECS service."""
    return f"service/{cluster_name(spec.cluster)}/{spec.service}"


def same_task_definition(declared: str, live_arn: str) -> bool:
    """A `family:revision` pin matches the ARN that ends with it; an ARN must match exactly."""
    if declared.startswith("arn:"):
        return declared == live_arn
    return live_arn == declared or live_arn.endswith(f":task-definition/{declared}")


def _spec(resource: Resource) -> ECSServiceSpec:
    assert isinstance(resource.manifest, ECSService)
    return resource.manifest.spec


def diff_service(name: str, spec: ECSServiceSpec, live: ServiceObservation) -> tuple[Action, ...]:
    """Pure: the actions that bring one observed service to its spec."""
    actions: list[Action] = []
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    params: dict[str, Any] = {"cluster": spec.cluster, "service": spec.service}
    # Declaring desiredCount for an autoscaled service is a Conflict even while the counts
    # happen to agree: the autoscaler owns the count, and the manifest must say so.
    count_conflict = spec.desiredCount is not None and live.scalable_target is not None
    if spec.desiredCount is not None and (spec.desiredCount != live.desired_count or count_conflict):
        before["desiredCount"] = live.desired_count
        after["desiredCount"] = spec.desiredCount
        params["desiredCount"] = spec.desiredCount
    if spec.taskDefinition is not None and not same_task_definition(
        spec.taskDefinition, live.task_definition
    ):
        before["taskDefinition"] = live.task_definition
        after["taskDefinition"] = spec.taskDefinition
        params["taskDefinition"] = spec.taskDefinition
    target = f"{cluster_name(spec.cluster)}/{spec.service}"
    conflict = None
    if count_conflict:
        conflict = (
            "service has an Application Auto Scaling target that owns desiredCount; "
            "declare autoscaling bounds instead of desiredCount"
        )
    if after:
        drifted = sorted(k for k in after if before[k] != after[k])
        changed = " and ".join(drifted) or "desiredCount"
        verb = "differ" if len(drifted) > 1 else "differs"
        actions.append(
            Action(
                kind=Kind.ECS_SERVICE,
                name=name,
                action=UPDATE_SERVICE,
                target=target,
                before=before,
                after=after,
                reason=f"drift: {changed} {verb} from the manifest"
                if drifted
                else "desiredCount is declared for a service whose count Application Auto Scaling owns",
                params=params,
                conflict=conflict,
            )
        )
    if spec.autoscaling is not None and live.scalable_target is not None:
        bounds = ScalableTarget(spec.autoscaling.minCapacity, spec.autoscaling.maxCapacity)
        if bounds != live.scalable_target:
            actions.append(
                Action(
                    kind=Kind.ECS_SERVICE,
                    name=name,
                    action=UPDATE_SCALABLE_TARGET,
                    target=resource_id(spec),
                    before={
                        "minCapacity": live.scalable_target.min_capacity,
                        "maxCapacity": live.scalable_target.max_capacity,
                    },
                    after={"minCapacity": bounds.min_capacity, "maxCapacity": bounds.max_capacity},
                    reason="drift: autoscaling bounds differ from the manifest",
                    params={
                        "resourceId": resource_id(spec),
                        "minCapacity": bounds.min_capacity,
                        "maxCapacity": bounds.max_capacity,
                    },
                )
            )
    if conflict is not None:
        # Nothing of a conflicted resource is changed: report every action as conflicted.
        actions = [a if a.conflict else _conflicted(a, conflict) for a in actions]
    return tuple(actions)


def _conflicted(action: Action, message: str) -> Action:
    return Action(
        kind=action.kind,
        name=action.name,
        action=action.action,
        target=action.target,
        before=action.before,
        after=action.after,
        reason=action.reason,
        params=action.params,
        conflict=message,
    )


class ECSServiceReconciler:
    kind: ClassVar[Kind] = Kind.ECS_SERVICE

    def observe(
        self, resources: Sequence[Resource], desired: DesiredState, aws: AwsClients, now: datetime
    ) -> Mapping[str, object]:
        by_cluster: dict[str, list[Resource]] = defaultdict(list)
        for resource in resources:
            by_cluster[_spec(resource).cluster].append(resource)
        results: dict[str, object] = {}
        targets, target_error = self._scalable_targets(resources, aws)
        ecs = aws.client("ecs")
        for cluster, members in by_cluster.items():
            live: dict[str, dict[str, Any]] = {}
            failures: dict[str, str] = {}
            names = sorted({_spec(r).service for r in members})
            try:
                for batch in chunks(names, DESCRIBE_SERVICES_BATCH):
                    response = ecs.describe_services(cluster=cluster, services=batch)
                    for item in response.get("services", []):
                        live[item["serviceName"]] = item
                    for failure in response.get("failures", []):
                        arn = str(failure.get("arn", ""))
                        failures[arn.rsplit("/", 1)[-1]] = str(failure.get("reason", "unknown"))
            except AWS_ERRORS as exc:
                for resource in members:
                    results[resource.name] = ObserveError(f"cluster {cluster}: {describe_error(exc)}")
                continue
            for resource in members:
                spec = _spec(resource)
                item = live.get(spec.service)
                if target_error is not None:
                    results[resource.name] = ObserveError(target_error)
                elif item is None or item.get("status") == "INACTIVE":
                    reason = failures.get(spec.service, "INACTIVE" if item else "MISSING")
                    results[resource.name] = ObserveError(
                        f"service {spec.service} not found in cluster {cluster} ({reason})"
                    )
                else:
                    results[resource.name] = ServiceObservation(
                        cluster=cluster,
                        service=spec.service,
                        desired_count=int(item["desiredCount"]),
                        task_definition=str(item["taskDefinition"]),
                        scalable_target=targets.get(resource_id(spec)),
                    )
        return results

    @staticmethod
    def _scalable_targets(
        resources: Sequence[Resource], aws: AwsClients
    ) -> tuple[dict[str, ScalableTarget], str | None]:
        """Scalable targets by resource id. A failed read is an error for every service:
        without it we cannot know whether an autoscaler owns the count (fail closed)."""
        ids = sorted({resource_id(_spec(r)) for r in resources})
        found: dict[str, ScalableTarget] = {}
        if not ids:
            return found, None
        client = aws.client("application-autoscaling")
        try:
            for batch in chunks(ids, SCALABLE_TARGETS_BATCH):
                for response in pages(
                    client.describe_scalable_targets,
                    "NextToken",
                    ServiceNamespace="ecs",
                    ResourceIds=batch,
                    ScalableDimension=SCALABLE_DIMENSION,
                ):
                    for item in response.get("ScalableTargets", []):
                        found[item["ResourceId"]] = ScalableTarget(
                            int(item["MinCapacity"]), int(item["MaxCapacity"])
                        )
        except AWS_ERRORS as exc:
            return {}, f"cannot read Application Auto Scaling targets: {describe_error(exc)}"
        return found, None

    def diff(self, resource: Resource, observed: object, now: datetime) -> Plan:
        if isinstance(observed, ObserveError):
            return Plan(self.kind, resource.name, error=observed.message)
        assert isinstance(observed, ServiceObservation)
        spec = _spec(resource)
        notes: tuple[str, ...] = ()
        if spec.autoscaling is not None and observed.scalable_target is None:
            return Plan(
                self.kind,
                resource.name,
                error=f"autoscaling is declared but {resource_id(spec)} has no scalable target; "
                "homeostat does not create one",
            )
        if observed.scalable_target is not None and spec.desiredCount is None:
            notes = (f"desiredCount {observed.desired_count} is owned by Application Auto Scaling",)
        return Plan(
            self.kind,
            resource.name,
            actions=diff_service(resource.name, spec, observed),
            notes=notes,
        )

    def apply(self, actions: Sequence[Action], aws: AwsClients) -> list[ApplyResult]:
        results = []
        for action in actions:
            try:
                if action.action == UPDATE_SERVICE:
                    aws.client("ecs").update_service(**action.params)
                elif action.action == UPDATE_SCALABLE_TARGET:
                    aws.client("application-autoscaling").register_scalable_target(
                        ServiceNamespace="ecs",
                        ScalableDimension=SCALABLE_DIMENSION,
                        ResourceId=action.params["resourceId"],
                        MinCapacity=action.params["minCapacity"],
                        MaxCapacity=action.params["maxCapacity"],
                    )
                else:
                    raise ValueError(f"unknown action {action.action}")
            except AWS_ERRORS as exc:
                results.append(ApplyResult(action, describe_error(exc)))
            else:
                results.append(ApplyResult(action))
        return results

    def wake_times(self, desired: DesiredState, now: datetime) -> list[datetime]:
        return []
