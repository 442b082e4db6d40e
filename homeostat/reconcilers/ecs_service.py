"""ECSService: desiredCount and task definition of ECS services, autoscaler-aware.

The kind module: the manifest model, its cross-document checks and shard bonds, and the
descriptor. The pure decisions are in ecs_service_diff.py, the reconciler (observe, apply) in
ecs_service_reconciler.py, its AWS I/O in ecs_services.py; the reconciler is imported only when
a process builds one, so `validate` and `schema` never load it.

Diff: one UpdateService per drifted service carrying every drifted field; an
autoscaled service whose manifest declares desiredCount is a Conflict (the
autoscaler owns the count; nothing is changed); declared `autoscaling` bounds
are reconciled on the scalable target with RegisterScalableTarget.
`taskDefinitionFrom` names an ECSTaskDefinition: the service runs the ACTIVE revision that
carries its declared digest. A service that is not ACTIVE (DRAINING, INACTIVE) or missing is
an error: nothing is sent. The deployment carrying the wanted task definition is watched
(rollouts.py): while it is IN_PROGRESS the service is Deploying and a timed pass follows every
few seconds; a failed one is DeploymentFailed, recorded once, and its revision is held back
until the manifests change.
"""

from collections.abc import Iterator, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, StrictInt, model_validator

from homeostat.desired_state.identifiers import Kind
from homeostat.desired_state.models import (
    AWS_NAME,
    NAME_PATTERN,
    CapacityBounds,
    ManifestBase,
    SpecBase,
)
from homeostat.desired_state.state import ManifestError, Resource
from homeostat.desired_state.validation import per_region, where
from homeostat.reconcilers.descriptor import KindDescriptor, Shared, example_of
from homeostat.reconcilers.rollouts import (
    DEPLOYMENT_STATE,
)
from homeostat.reconcilers.task_definitions import RevisionCatalog

if TYPE_CHECKING:
    from homeostat.reconcilers.ecs_service_reconciler import ECSServiceReconciler

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


def cluster_name(cluster: str) -> str:
    return cluster.rsplit("/", 1)[-1] if cluster.startswith("arn:") else cluster


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


def _reconciler(shared: Shared) -> "ECSServiceReconciler":
    # Imported here, not at the top: the reconciler imports this module (its model), and only a
    # process that reconciles needs it (validate, schema and plan's loading do not).
    from homeostat.reconcilers.ecs_service_reconciler import ECSServiceReconciler

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
