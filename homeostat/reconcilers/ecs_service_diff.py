"""ECSService's pure decisions: what one observed service needs (no I/O, `now`-free).

The values an observation carries (ServiceObservation, DeclaredRevision, ServiceRecall) and
the diff: count, task definition (a pin or `taskDefinitionFrom`), autoscaling bounds, the
redeployToken, and the one finding of a failed deployment. The reconciler
(ecs_service_reconciler.py) observes and applies; these functions decide.
"""

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from homeostat.reconcilers.actions import Action, Finding
from homeostat.reconcilers.ecs_service import KIND, ECSAction, ECSServiceSpec, cluster_name
from homeostat.reconcilers.ecs_services import (
    ScalableTarget,
)
from homeostat.reconcilers.rollouts import (
    RolloutMemory,
    Verdict,
)
from homeostat.reconcilers.task_definitions import digest_of


@dataclass(frozen=True, slots=True)
class DeclaredRevision:
    """Where `taskDefinitionFrom` points: the ECSTaskDefinition's family and declared digest, and
    the ACTIVE revisions that carry it (newest first; none before it is registered)."""

    source: str
    family: str
    digest: str
    arns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ServiceObservation:
    """What AWS says of one service (task definition as the full ARN); the running count and
    the PRIMARY deployment's rollout state are read from the same DescribeServices answer, for
    the morning health check."""

    cluster: str
    service: str
    desired_count: int
    task_definition: str
    scalable_target: ScalableTarget | None
    declared: DeclaredRevision | None = None
    running_count: int | None = None
    rollout: str | None = None
    # The watched deployment of the wanted task definition, and the manifests digest it is keyed by.
    watched: Verdict | None = None
    manifests: str = ""
    # The redeployToken last applied, from the history; NOT_REMEMBERED without one (`plan`).
    applied_token: str | None = None


def service_facts(observed: ServiceObservation) -> dict[str, Any]:
    """The Plan facts of a service (see Plan): tasks and rollout, as observed."""
    return {
        "running": observed.running_count,
        "desired": observed.desired_count,
        "rollout": observed.rollout,
        "taskDefinition": observed.task_definition,
    }


def resource_id(spec: ECSServiceSpec) -> str:
    """Application Auto Scaling's id of an ECS service."""
    return f"service/{cluster_name(spec.cluster)}/{spec.service}"


def same_task_definition(declared: str, live_arn: str) -> bool:
    """A `family:revision` pin matches the ARN that ends with it; an ARN must match exactly."""
    if declared.startswith("arn:"):
        return declared == live_arn
    return live_arn == declared or live_arn.endswith(f":task-definition/{declared}")


# What `plan` (no history store) knows of the last applied redeployToken: nothing.
NOT_REMEMBERED = "(unknown: plan does not read the history)"


@dataclass(frozen=True, slots=True)
class ServiceRecall:
    """The history's part of one group's observation (both None without a history: `plan`)."""

    tokens: Mapping[str, str | None] | None
    memories: Mapping[str, RolloutMemory] | None

    def token(self, name: str) -> str | None:
        """The redeployToken last sent to the service (None: never, or it declares none)."""
        return NOT_REMEMBERED if self.tokens is None else self.tokens.get(name)

    def memory(self, name: str) -> RolloutMemory | None:
        return None if self.memories is None else self.memories.get(name, RolloutMemory())


def redeploy(name: str, spec: ECSServiceSpec, applied: str | None) -> tuple[Action, ...]:
    """Pure: one forced new deployment when the declared redeployToken differs from the one
    last applied (the first value set counts as different). Without a history (`plan`) it
    cannot know, and says "would redeploy" only then."""
    token = spec.redeployToken
    if token is None or token == applied:
        return ()
    unknown = applied == NOT_REMEMBERED
    return (
        Action(
            kind=KIND,
            name=name,
            action=ECSAction.REDEPLOY,
            target=f"{cluster_name(spec.cluster)}/{spec.service}",
            before={"redeployToken": applied},
            after={"redeployToken": token},
            reason="redeploy: would redeploy unless the history holds this redeployToken as applied"
            if unknown
            else "redeploy: redeployToken differs from the one last applied",
            params={"cluster": spec.cluster, "service": spec.service, "forceNewDeployment": True},
        ),
    )


def wanted_task_definitions(spec: ECSServiceSpec, declared: DeclaredRevision | None) -> tuple[str, ...]:
    """What the service should run: its pin, or the ACTIVE revisions holding the declared content."""
    if spec.taskDefinition is not None:
        return (spec.taskDefinition,)
    return declared.arns if declared is not None else ()


def runs_one_of(wanted: Sequence[str], live_arn: str) -> bool:
    """Whether a task definition ARN is one of the wanted pins or revisions."""
    return any(same_task_definition(w, live_arn) for w in wanted)


def manifests_digest(spec: ECSServiceSpec, declared: DeclaredRevision | None) -> str:
    """The digest of the service's manifest and its task definition's declared content: a
    failed revision is held back until this changes."""
    return digest_of(
        {"service": spec.model_dump(mode="json"), "taskDefinition": declared.digest if declared else None}
    )


def failure_finding(name: str, spec: ECSServiceSpec, live: ServiceObservation) -> tuple[Finding, ...]:
    """The one history row of a failed deployment: its error names the task definition and the
    manifests digest (so another failure with the same reason is another row), its `after`
    is what keeps that revision from being sent again."""
    failure = live.watched.new_failure if live.watched is not None else None
    if failure is None:
        return ()
    task_definition, reason = failure
    return (
        Finding(
            kind=KIND,
            name=name,
            action=ECSAction.DEPLOYMENT_FAILED,
            target=f"{cluster_name(spec.cluster)}/{spec.service}",
            reason="rollout: the deployment failed; its revision is not sent again until the manifest "
            "of the service or of its task definition changes",
            error=f"{reason} (task definition {task_definition}, manifests {live.manifests[:12]})",
            after={"taskDefinition": task_definition, "manifests": live.manifests},
        ),
    )


def _awaited_move(
    name: str, spec: ECSServiceSpec, live: ServiceObservation, declared: DeclaredRevision
) -> Action:
    """The move to a revision not registered yet (`plan`, a dry run, a registration that failed in
    this pass): shown, never sent (apply refuses it). Its own action, so that the service's other
    drift (its count) is still fixed while the task definition cannot be registered."""
    return Action(
        kind=KIND,
        name=name,
        action=ECSAction.UPDATE_SERVICE,
        target=f"{cluster_name(spec.cluster)}/{spec.service}",
        before={"taskDefinition": live.task_definition},
        after={
            "taskDefinition": f"{declared.family}:(the revision ECSTaskDefinition {declared.source} "
            f"registers, digest {declared.digest[:12]})"
        },
        reason=f"deploy: ECSTaskDefinition {declared.source} declares new content",
        params={"unregistered": declared.source},
    )


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
    # A watched deployment that settles or failed holds the task definition back: nothing re-sent.
    held = live.watched is not None and live.watched.holds_back
    if (
        not held
        and spec.taskDefinition is not None
        and not same_task_definition(spec.taskDefinition, live.task_definition)
    ):
        before["taskDefinition"] = live.task_definition
        after["taskDefinition"] = spec.taskDefinition
        params["taskDefinition"] = spec.taskDefinition
    declared = live.declared
    awaited = None
    if not held and declared is not None and live.task_definition not in declared.arns:
        if declared.arns:
            before["taskDefinition"] = live.task_definition
            after["taskDefinition"] = params["taskDefinition"] = declared.arns[0]
        else:
            awaited = _awaited_move(name, spec, live, declared)
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
                kind=KIND,
                name=name,
                action=ECSAction.UPDATE_SERVICE,
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
                    kind=KIND,
                    name=name,
                    action=ECSAction.UPDATE_SCALABLE_TARGET,
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
    if awaited is not None:
        actions.append(awaited)
    actions.extend(redeploy(name, spec, live.applied_token))
    if conflict is not None:
        # Nothing of a conflicted resource is changed: report every action as conflicted.
        actions = [a if a.conflict else dataclasses.replace(a, conflict=conflict) for a in actions]
    return tuple(actions)
