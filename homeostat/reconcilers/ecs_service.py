"""ECSService: desiredCount and task definition of ECS services, autoscaler-aware.

Observe (the I/O is ecs_services.py): DescribeServices, 10 services per call per cluster
(AWS's limit), and Application Auto Scaling DescribeScalableTargets, 50 resource ids per call.
Diff: one UpdateService per drifted service carrying every drifted field; an
autoscaled service whose manifest declares desiredCount is a Conflict (the
autoscaler owns the count; nothing is changed); declared `autoscaling` bounds
are reconciled on the scalable target with RegisterScalableTarget.
`taskDefinitionFrom` names an ECSTaskDefinition: the service runs the ACTIVE revision that
carries its declared digest (the family's revisions are listed once per family per pass,
each revision's tags read once per process, shared with ECSTaskDefinition's reconciler).
A service that is not ACTIVE (DRAINING, INACTIVE) or missing is an error: nothing is sent.
The deployment carrying the wanted task definition is watched (rollouts.py): while it is
IN_PROGRESS the service is Deploying and a timed pass follows every few seconds; a failed one
is DeploymentFailed, recorded once, and its revision is held back until the manifests change.
"""

import dataclasses
import threading
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Annotated, Any, Literal

from pydantic import Field, StrictInt, model_validator

from homeostat.desired_state.identifiers import Kind
from homeostat.desired_state.models import (
    AWS_NAME,
    NAME_PATTERN,
    CapacityBounds,
    ManifestBase,
    SpecBase,
)
from homeostat.desired_state.state import DesiredState, ManifestError, Resource
from homeostat.desired_state.validation import per_region, where
from homeostat.reconcilers.actions import Action, ApplyResult, Finding, ObserveError, Plan, RolloutState
from homeostat.reconcilers.aws import AwsClients, aws_errors, describe_error, send_each, together
from homeostat.reconcilers.descriptor import KindDescriptor, Shared, example_of
from homeostat.reconcilers.ecs_services import (
    ScalableTarget,
    describe_services,
    not_active,
    primary_rollout,
    register_scalable_target,
    scalable_targets,
)
from homeostat.reconcilers.rollouts import (
    DEPLOYMENT_STATE,
    SETTLE_SECONDS,
    Recall,
    RolloutMemory,
    Verdict,
    deployment_gauge,
    deployments_of,
    verdict,
)
from homeostat.reconcilers.task_definitions import RevisionCatalog, TaskDefinitionSpec, digest_of, holding

KIND = Kind("ECSService")


class ECSAction(StrEnum):
    UPDATE_SERVICE = "update_service"
    UPDATE_SCALABLE_TARGET = "update_scalable_target"
    DEPLOYMENT_FAILED = "deployment_failed"
    REDEPLOY = "redeploy"


class AutoscalingBounds(CapacityBounds):
    minCapacity: Annotated[StrictInt, Field(ge=0, description="Scalable target MinCapacity.")]
    maxCapacity: Annotated[StrictInt, Field(ge=0, description="Scalable target MaxCapacity.")]


class ECSServiceSpec(SpecBase):
    cluster: Annotated[str, Field(pattern=AWS_NAME, description="ECS cluster name or ARN.")]
    service: Annotated[
        str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$", description="ECS service name (not an ARN).")
    ]
    desiredCount: Annotated[
        StrictInt | None,
        Field(ge=0, description="Tasks to run. Omit when Application Auto Scaling owns the count."),
    ] = None
    taskDefinition: Annotated[
        str | None,
        Field(
            pattern=r"^(arn:aws[a-z-]*:ecs:[a-z0-9-]+:[0-9]{12}:task-definition/)?[A-Za-z0-9_-]{1,255}:[1-9][0-9]*$",
            description="Optional pin: family:revision or a task definition ARN.",
        ),
    ] = None
    taskDefinitionFrom: Annotated[
        str | None,
        Field(
            pattern=NAME_PATTERN,
            description="Instead of taskDefinition: the ECSTaskDefinition resource whose declared "
            "content the service runs (a commit is a deployment, a revert a rollback).",
        ),
    ] = None
    redeployToken: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=255,
            description="A new value sends one UpdateService with forceNewDeployment, once per value, "
            "ever (the runbook's restart).",
        ),
    ] = None
    autoscaling: Annotated[
        AutoscalingBounds | None,
        Field(
            description="Bounds of the service's Application Auto Scaling target (instead of desiredCount)."
        ),
    ] = None

    @model_validator(mode="after")
    def _count_or_autoscaling(self) -> "ECSServiceSpec":
        if self.desiredCount is not None and self.autoscaling is not None:
            raise ValueError("declare either desiredCount or autoscaling, not both")
        if self.taskDefinition is not None and self.taskDefinitionFrom is not None:
            raise ValueError("declare either taskDefinition or taskDefinitionFrom, not both")
        return self


class ECSService(ManifestBase):
    """Desired count and pinned task definition of one ECS service.

    Example:
        apiVersion: homeostat/v1
        kind: ECSService
        metadata: {name: api}
        spec:
          cluster: omnirapeutic-production
          service: omnirapeutic-production-api
          desiredCount: 4
          taskDefinition: omnirapeutic-production-api:42
    """

    kind: Literal["ECSService"]
    spec: ECSServiceSpec


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


def _failure_finding(name: str, spec: ECSServiceSpec, live: ServiceObservation) -> tuple[Finding, ...]:
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


class ECSServiceReconciler:
    kinds = (KIND,)

    def __init__(self, catalog: RevisionCatalog | None = None, recall: Recall | None = None) -> None:
        self.catalog = catalog or RevisionCatalog()
        self.recall = recall
        # Services whose deployment settles (or was just sent): they want a pass soon. Each
        # observe replaces the entries of the services it observed (the pass observes each
        # region on its own), read by the daemon's wake-up computation.
        self._settling: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def observe(
        self, resources: Sequence[Resource[ECSService]], desired: DesiredState, aws: AwsClients, now: datetime
    ) -> Mapping[str, ServiceObservation | ObserveError]:
        by_cluster: dict[str, list[Resource[ECSService]]] = defaultdict(list)
        for resource in resources:
            by_cluster[resource.manifest.spec.cluster].append(resource)
        results: dict[str, ServiceObservation | ObserveError] = {}
        ids = [resource_id(r.manifest.spec) for r in resources]
        ecs = aws.client("ecs")
        declared = self._declared(resources, desired, ecs, now)
        recalled = self._recalled(resources)
        (targets, target_error), answers = together(
            lambda: scalable_targets(aws.client("application-autoscaling"), ids) if ids else ({}, None),
            lambda: describe_services(
                ecs,
                {
                    cluster: [r.manifest.spec.service for r in members]
                    for cluster, members in by_cluster.items()
                },
            ),
        )
        for cluster, members in by_cluster.items():
            found = answers[cluster]
            if found.error is not None:
                for resource in members:
                    results[resource.name] = ObserveError(found.error)
                continue
            for resource in members:
                spec = resource.manifest.spec
                item = found.live.get(spec.service)
                wanted = declared.get(spec.taskDefinitionFrom) if spec.taskDefinitionFrom else None
                error = (
                    target_error
                    or not_active(spec.service, cluster, item, found.failures)
                    or (wanted.message if isinstance(wanted, ObserveError) else None)
                )
                if error is not None or item is None or isinstance(wanted, ObserveError):
                    results[resource.name] = ObserveError(error or "not observed")
                else:
                    manifests = manifests_digest(spec, wanted)
                    runs = wanted_task_definitions(spec, wanted)
                    watched = (
                        verdict(
                            partial(runs_one_of, runs),
                            manifests,
                            deployments_of(item),
                            recalled.memory(resource.name),
                            current=str(item["taskDefinition"]),
                        )
                        if runs
                        else None
                    )
                    results[resource.name] = ServiceObservation(
                        cluster=cluster,
                        service=spec.service,
                        desired_count=int(item["desiredCount"]),
                        task_definition=str(item["taskDefinition"]),
                        scalable_target=targets.get(resource_id(spec)),
                        declared=wanted,
                        running_count=int(item.get("runningCount", 0)),
                        rollout=primary_rollout(item),
                        watched=watched,
                        manifests=manifests,
                        applied_token=recalled.token(resource.name),
                    )
        deploying = {
            name
            for name, seen in results.items()
            if isinstance(seen, ServiceObservation)
            and seen.watched is not None
            and seen.watched.rollout.state == RolloutState.DEPLOYING
        }
        with self._lock:
            self._settling = (self._settling - {r.name for r in resources}) | deploying
        return results

    def _recalled(self, resources: Sequence[Resource[ECSService]]) -> ServiceRecall:
        """What the history holds for this group, in three batched queries (not two or four per
        service): the redeployToken last sent to each service that declares one, and the
        rollout memory of each that runs a declared task definition."""
        if self.recall is None:
            return ServiceRecall(tokens=None, memories=None)
        tokened = [r.name for r in resources if r.manifest.spec.redeployToken is not None]
        pinned = [
            r.name
            for r in resources
            if r.manifest.spec.taskDefinition is not None or r.manifest.spec.taskDefinitionFrom is not None
        ]
        kind = str(KIND)
        # An `interrupted` row counts as sent: AWS may have seen the call, and a restart must
        # never redeploy twice.
        redeploys = self.recall.remembered(kind, tokened, ECSAction.REDEPLOY, ("applied", "interrupted"))
        sent = self.recall.remembered(kind, pinned, ECSAction.UPDATE_SERVICE, ("applied",))
        failed = self.recall.remembered(kind, pinned, ECSAction.DEPLOYMENT_FAILED, ("failed",))
        return ServiceRecall(
            tokens={
                name: str(rows[0].after.get("redeployToken")) if rows else None
                for name in tokened
                for rows in [redeploys.get(name, [])]
            },
            memories={
                name: RolloutMemory(sent=tuple(sent.get(name, ())), failed=tuple(failed.get(name, ())))
                for name in pinned
            },
        )

    def _declared(
        self, resources: Sequence[Resource[ECSService]], desired: DesiredState, ecs: Any, now: datetime
    ) -> dict[str, DeclaredRevision | ObserveError]:
        """Per ECSTaskDefinition named by a `taskDefinitionFrom`: the revisions holding its declared
        content. The pass runs this kind after ECSTaskDefinition's, so the family's listing of
        this pass (shared catalog), with the revision registered in it, is already known."""
        named = {r.manifest.spec.taskDefinitionFrom for r in resources} - {None}
        found: dict[str, DeclaredRevision | ObserveError] = {}
        listed: dict[str, Any] = {}
        for source in desired.of_kind(Kind("ECSTaskDefinition")):
            spec = source.manifest.spec
            if source.name not in named or not isinstance(spec, TaskDefinitionSpec):
                continue
            digest = digest_of(spec.content())
            try:
                if spec.family not in listed:
                    listed[spec.family] = self.catalog.active_revisions(ecs, spec.family, now)
            except aws_errors() as exc:
                listed[spec.family] = ObserveError(
                    f"cannot list the revisions of {spec.family}: {describe_error(exc)}"
                )
            revisions = listed[spec.family]
            found[source.name] = (
                revisions
                if isinstance(revisions, ObserveError)
                else DeclaredRevision(
                    source.name, spec.family, digest, tuple(r.arn for r in holding(revisions, digest))
                )
            )
        return found

    def diff(
        self, resource: Resource[ECSService], observed: ServiceObservation | ObserveError, now: datetime
    ) -> Plan:
        if isinstance(observed, ObserveError):
            return Plan(KIND, resource.name, error=observed.message)
        spec = resource.manifest.spec
        notes: tuple[str, ...] = ()
        if spec.autoscaling is not None and observed.scalable_target is None:
            return Plan(
                KIND,
                resource.name,
                error=f"autoscaling is declared but {resource_id(spec)} has no scalable target; "
                "homeostat does not create one",
            )
        if observed.scalable_target is not None and spec.desiredCount is None:
            notes = (f"desiredCount {observed.desired_count} is owned by Application Auto Scaling",)
        watched = observed.watched
        if watched is not None and watched.holds_back:  # `plan` shows it too
            notes = (*notes, watched.rollout.message)
        targets = wanted_task_definitions(spec, observed.declared)
        in_place = runs_one_of(targets, observed.task_definition)
        return Plan(
            KIND,
            resource.name,
            actions=diff_service(resource.name, spec, observed),
            notes=notes,
            facts=service_facts(observed),
            findings=_failure_finding(resource.name, spec, observed),
            measurements=deployment_gauge(resource.name, watched, in_place) if targets else (),
            rollout=watched.rollout if watched is not None else None,
        )

    def apply(self, actions: Sequence[Action], aws: AwsClients) -> list[ApplyResult]:
        def send(action: Action) -> str | None:
            if action.action == ECSAction.UPDATE_SERVICE and "unregistered" in action.params:
                return (
                    f"not sent: ECSTaskDefinition {action.params['unregistered']} has no ACTIVE "
                    "revision holding its declared content"
                )
            if action.action in {ECSAction.UPDATE_SERVICE, ECSAction.REDEPLOY}:
                aws.client("ecs").update_service(**action.params)
                if "taskDefinition" in action.params:  # a deployment starts: watch it soon
                    with self._lock:
                        self._settling = self._settling | {action.name}
            elif action.action == ECSAction.UPDATE_SCALABLE_TARGET:
                register_scalable_target(aws.client("application-autoscaling"), action.params)
            else:
                raise ValueError(f"unknown action {action.action}")
            return None

        return send_each(actions, send)

    def wake_times(self, desired: DesiredState, now: datetime) -> list[datetime]:
        """A pass every few seconds while a deployment settles (not the resync)."""
        declared = {r.name for r in desired.of_kind(KIND)}  # not a service no longer declared
        return [now + timedelta(seconds=SETTLE_SECONDS)] if self._settling & declared else []


def known_task_definition(resources: Sequence[Resource[Any]]) -> list[ManifestError]:
    """A `taskDefinitionFrom` must name an ECSTaskDefinition of the same desired state and the
    same `spec.region` (a service runs task definitions registered in its own region; "no
    region" is a value of its own, as in `per_region`)."""
    definitions = [r for r in resources if r.kind == Kind("ECSTaskDefinition")]
    declared = {(r.manifest.spec.region, r.name) for r in definitions}
    elsewhere = {r.name for r in definitions}
    errors = []
    for resource in resources:
        spec = resource.manifest.spec
        if resource.kind != KIND or spec.taskDefinitionFrom is None:
            continue
        if (spec.region, spec.taskDefinitionFrom) in declared:
            continue
        found = "is declared with another spec.region only" if spec.taskDefinitionFrom in elsewhere else None
        errors.append(
            ManifestError(
                resource.source.file,
                resource.source.line,
                "spec.taskDefinitionFrom",
                f"ECSService {resource.name!r} runs ECSTaskDefinition {spec.taskDefinitionFrom!r}, "
                f"which {found or 'is not declared'}",
            )
        )
    return errors


def runs_task_definition(
    resources: Sequence[Resource[Any]],
) -> Iterator[tuple[Resource[Any], Resource[Any], str]]:
    """The shard bond of `taskDefinitionFrom`: a service and the ECSTaskDefinition it runs are
    decided together (the service's revision is the one its task definition's reconciler holds)."""
    declared = {r.name: r for r in resources if r.kind == Kind("ECSTaskDefinition")}
    for resource in resources:
        named = resource.manifest.spec.taskDefinitionFrom if resource.kind == KIND else None
        if named is not None and named in declared:
            yield resource, declared[named], "the service runs it (taskDefinitionFrom)"


def _reconciler(shared: Shared) -> ECSServiceReconciler:
    return ECSServiceReconciler(shared.get(RevisionCatalog), shared.recall)


def same_service_twice(resources: Sequence[Resource[Any]]) -> list[ManifestError]:
    """Two ECSService manifests for one service would fight each other: an error at the second."""
    errors: list[ManifestError] = []
    first_seen: dict[tuple[str, str], Resource[ECSService]] = {}
    for resource in resources:
        if resource.kind != KIND:
            continue
        spec = resource.manifest.spec
        cluster = cluster_name(spec.cluster)
        first = first_seen.setdefault((cluster, spec.service), resource)
        if first is not resource:
            errors.append(
                ManifestError(
                    resource.source.file,
                    resource.source.line,
                    "spec.service",
                    f"ECSService {resource.name!r} manages service {spec.service!r} in cluster "
                    f"{cluster!r}, as does ECSService {first.name!r} ({where(first)})",
                )
            )
    return errors


DESCRIPTOR = KindDescriptor(
    kind=KIND,
    model=ECSService,
    order=10,
    example=example_of(ECSService),
    reconciler=None,
    make_reconciler=_reconciler,
    after=(Kind("ECSTaskDefinition"),),
    actions={
        ECSAction.UPDATE_SERVICE: ("ecs:UpdateService",),
        ECSAction.UPDATE_SCALABLE_TARGET: ("application-autoscaling:RegisterScalableTarget",),
        # A finding, not a change: seen in DescribeServices' deployments.
        ECSAction.DEPLOYMENT_FAILED: ("ecs:DescribeServices",),
        ECSAction.REDEPLOY: ("ecs:UpdateService",),
    },
    corrections=(ECSAction.UPDATE_SERVICE, ECSAction.UPDATE_SCALABLE_TARGET),
    gauges=(DEPLOYMENT_STATE,),
    observations=(
        "ecs:DescribeServices",
        "application-autoscaling:DescribeScalableTargets",
        "ecs:ListTaskDefinitions",
        "ecs:DescribeTaskDefinition",
    ),
    checks=(per_region(same_service_twice), known_task_definition),
    bonds=(runs_task_definition,),
)
