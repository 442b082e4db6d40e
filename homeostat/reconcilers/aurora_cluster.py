"""AuroraCluster: the cluster settings the runbook checks every morning, held.

Someone raises max ACUs during an incident and it stays raised; this kind holds the
declared `serverlessV2Scaling` (min/max ACUs), `backupRetentionPeriod` and
`deletionProtection` and never touches what is not declared.

Observe (per pass, all resources of the kind at once): one DescribeDBClusters per
100 clusters (`rds_clusters.describe_clusters`, Filters db-cluster-id, following
Marker); a failed read is an error for every resource of the batch (fail closed), a
missing cluster an error for its resources alone.
Diff (pure, `plan_cluster`): the declared fields that differ from the live cluster
become one ModifyDBCluster carrying only those fields and `ApplyImmediately=True`
(these settings cause no downtime, and a change deferred to the maintenance window
would be seen as drift again on every pass). A cluster whose Status is not
`available` (modifying, backing-up, upgrading...) gets no action and no error: AWS
refuses or queues modifications then, and the next pass sees the settled cluster.
Its plan notes say so and name any drift seen, so `plan` and status show it.
Apply: one ModifyDBCluster per action, deciding nothing.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StrictInt, model_validator

from homeostat.desired_state.identifiers import Kind
from homeostat.desired_state.models import CapacityBounds, ManifestBase, SpecBase
from homeostat.desired_state.state import DesiredState, ManifestError, Resource
from homeostat.desired_state.validation import per_region, where
from homeostat.reconcilers.actions import Action, ApplyResult, GaugeSpec, Measurement, ObserveError, Plan
from homeostat.reconcilers.aws import AwsClients, aws_errors, describe_error, send_each
from homeostat.reconcilers.descriptor import KindDescriptor, example_of
from homeostat.reconcilers.rds_clusters import describe_clusters

KIND = Kind("AuroraCluster")

AVAILABLE_STATUS = "available"
MIN_CAPACITY = "serverlessV2Scaling.minCapacity"
MAX_CAPACITY = "serverlessV2Scaling.maxCapacity"
BACKUP_RETENTION = "backupRetentionPeriod"
DELETION_PROTECTION = "deletionProtection"

CLUSTER_AVAILABLE = GaugeSpec(
    "aurora_cluster_available", "1 while the Aurora cluster's Status is available, else 0.", ("name",)
)
CAPACITY_MAX_ACU = GaugeSpec(
    "aurora_capacity_max_acu",
    "The Aurora cluster's live Serverless v2 MaxCapacity in ACUs (absent without a configuration).",
    ("name",),
)

Setting = float | int | bool


class AuroraClusterAction(StrEnum):
    MODIFY_DB_CLUSTER = "modify_db_cluster"


class ServerlessV2Scaling(CapacityBounds):
    """AWS's ranges for Aurora Serverless v2, in steps of 0.5 ACU: MinCapacity 0 (automatic pause,
    where the engine version supports it) or 0.5 to 256, MaxCapacity 1 to 256. Strict numbers:
    a quoted "16" is an error, not a silent conversion."""

    minCapacity: Annotated[
        float,
        Field(
            strict=True, ge=0, le=256, multiple_of=0.5, description="Minimum ACUs: 0 or 0.5-256, step 0.5."
        ),
    ]
    maxCapacity: Annotated[
        float,
        Field(strict=True, ge=1, le=256, multiple_of=0.5, description="Maximum ACUs: 1-256, step 0.5."),
    ]


class AuroraClusterSpec(SpecBase):
    dbClusterIdentifier: Annotated[
        str,
        Field(pattern=r"^[A-Za-z][A-Za-z0-9-]{0,62}$", description="Aurora DB cluster identifier."),
    ]
    serverlessV2Scaling: Annotated[
        ServerlessV2Scaling | None,
        Field(description="Serverless v2 capacity range (ACUs), held as a whole."),
    ] = None
    backupRetentionPeriod: Annotated[
        StrictInt | None, Field(ge=1, le=35, description="Automated backup retention in days (1-35).")
    ] = None
    deletionProtection: Annotated[
        StrictBool | None, Field(description="Whether the cluster refuses to be deleted.")
    ] = None

    @model_validator(mode="after")
    def _something_to_hold(self) -> "AuroraClusterSpec":
        if (
            self.serverlessV2Scaling is None
            and self.backupRetentionPeriod is None
            and self.deletionProtection is None
        ):
            raise ValueError(
                "declare at least one of serverlessV2Scaling, backupRetentionPeriod or deletionProtection "
                "(nothing to hold)"
            )
        return self


class AuroraCluster(ManifestBase):
    """Serverless v2 capacity, backup retention and deletion protection of one Aurora cluster.

    Example:
        apiVersion: homeostat/v1
        kind: AuroraCluster
        metadata: {name: aurora-production}
        spec:
          dbClusterIdentifier: omnirapeutic-production
          serverlessV2Scaling: {minCapacity: 0.5, maxCapacity: 16}
          backupRetentionPeriod: 7
          deletionProtection: true
    """

    kind: Literal["AuroraCluster"]
    spec: AuroraClusterSpec


@dataclass(frozen=True, slots=True)
class ClusterObservation:
    """What DescribeDBClusters says of one cluster (None: AWS reports no such setting)."""

    identifier: str
    status: str
    min_capacity: float | None
    max_capacity: float | None
    backup_retention_period: int | None
    deletion_protection: bool | None


def observation_of(item: Mapping[str, Any]) -> ClusterObservation:
    """A ClusterObservation from one DBClusters entry of the AWS response."""
    scaling = item.get("ServerlessV2ScalingConfiguration") or {}
    retention = item.get("BackupRetentionPeriod")
    protection = item.get("DeletionProtection")
    return ClusterObservation(
        identifier=str(item["DBClusterIdentifier"]),
        status=str(item.get("Status", "unknown")),
        min_capacity=_number(scaling.get("MinCapacity")),
        max_capacity=_number(scaling.get("MaxCapacity")),
        backup_retention_period=int(retention) if retention is not None else None,
        deletion_protection=bool(protection) if protection is not None else None,
    )


def _number(value: Any) -> float | None:
    return float(value) if value is not None else None


def declared_settings(spec: AuroraClusterSpec) -> dict[str, Setting]:
    """The declared fields, by manifest path; undeclared ones are absent (never touched)."""
    declared: dict[str, Setting] = {}
    if spec.serverlessV2Scaling is not None:
        declared[MIN_CAPACITY] = spec.serverlessV2Scaling.minCapacity
        declared[MAX_CAPACITY] = spec.serverlessV2Scaling.maxCapacity
    if spec.backupRetentionPeriod is not None:
        declared[BACKUP_RETENTION] = spec.backupRetentionPeriod
    if spec.deletionProtection is not None:
        declared[DELETION_PROTECTION] = spec.deletionProtection
    return declared


def live_settings(live: ClusterObservation) -> dict[str, Setting | None]:
    return {
        MIN_CAPACITY: live.min_capacity,
        MAX_CAPACITY: live.max_capacity,
        BACKUP_RETENTION: live.backup_retention_period,
        DELETION_PROTECTION: live.deletion_protection,
    }


def drift_of(spec: AuroraClusterSpec, live: ClusterObservation) -> dict[str, tuple[Setting | None, Setting]]:
    """Pure: (live, declared) of each declared field that differs, in manifest order."""
    observed = live_settings(live)
    return {
        path: (observed[path], value)
        for path, value in declared_settings(spec).items()
        if observed[path] != value
    }


def modify_params(spec: AuroraClusterSpec, drift: Mapping[str, object]) -> dict[str, Any]:
    """The ModifyDBCluster parameters of the drifted fields. The scaling configuration is sent
    whole (both declared bounds) when either bound drifted: AWS and moto replace it as a whole."""
    params: dict[str, Any] = {"DBClusterIdentifier": spec.dbClusterIdentifier, "ApplyImmediately": True}
    if (MIN_CAPACITY in drift or MAX_CAPACITY in drift) and spec.serverlessV2Scaling is not None:
        params["ServerlessV2ScalingConfiguration"] = {
            "MinCapacity": spec.serverlessV2Scaling.minCapacity,
            "MaxCapacity": spec.serverlessV2Scaling.maxCapacity,
        }
    if BACKUP_RETENTION in drift:
        params["BackupRetentionPeriod"] = spec.backupRetentionPeriod
    if DELETION_PROTECTION in drift:
        params["DeletionProtection"] = spec.deletionProtection
    return params


def describe_settings(live: ClusterObservation) -> str:
    """One line of the cluster's status and settings, for plan notes, status and the page."""
    scaling = (
        f"serverless v2 {live.min_capacity:g}-{live.max_capacity:g} ACUs"
        if live.min_capacity is not None and live.max_capacity is not None
        else "no serverless v2 scaling"
    )
    retention = (
        f"backup retention {live.backup_retention_period} days"
        if live.backup_retention_period is not None
        else ""
    )
    protection = {True: "deletion protection on", False: "deletion protection off", None: ""}
    parts = [scaling, retention, protection[live.deletion_protection]]
    return f"cluster {live.identifier} is {live.status}: " + ", ".join(p for p in parts if p)


def _shown(value: Setting | None) -> str:
    """A setting as a person writes it in a manifest: 16 not 16.0, true/false, unset."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}"


def describe_drift(drift: Mapping[str, tuple[Setting | None, Setting]]) -> str:
    return ", ".join(f"{path} {_shown(before)} -> {_shown(after)}" for path, (before, after) in drift.items())


def plan_cluster(name: str, spec: AuroraClusterSpec, live: ClusterObservation) -> Plan:
    """Pure: the plan of one resource over its observed cluster."""
    notes = [describe_settings(live)]
    measurements = [
        Measurement(CLUSTER_AVAILABLE, {"name": name}, 1 if live.status == AVAILABLE_STATUS else 0)
    ]
    if live.max_capacity is not None:
        measurements.append(Measurement(CAPACITY_MAX_ACU, {"name": name}, live.max_capacity))
    drift = drift_of(spec, live)
    actions: tuple[Action, ...] = ()
    if live.status != AVAILABLE_STATUS:
        # Not an error and not a change: the next pass sees the settled cluster.
        notes.append(f"cluster is {live.status}; left for a later pass")
        if drift:
            notes.append(f"drift left for a later pass: {describe_drift(drift)}")
    elif drift:
        verb = "differ" if len(drift) > 1 else "differs"
        actions = (
            Action(
                kind=KIND,
                name=name,
                action=AuroraClusterAction.MODIFY_DB_CLUSTER,
                target=spec.dbClusterIdentifier,
                before={path: before for path, (before, _) in drift.items()},
                after={path: after for path, (_, after) in drift.items()},
                reason=f"drift: {' and '.join(drift)} {verb} from the manifest",
                params=modify_params(spec, drift),
            ),
        )
    return Plan(
        KIND,
        name,
        actions=actions,
        notes=tuple(notes),
        measurements=tuple(measurements),
        facts={"cluster": spec.dbClusterIdentifier, "clusterStatus": live.status},  # the health check
    )


class AuroraClusterReconciler:
    kinds = (KIND,)

    def observe(
        self,
        resources: Sequence[Resource[AuroraCluster]],
        desired: DesiredState,
        aws: AwsClients,
        now: datetime,
    ) -> Mapping[str, ClusterObservation | ObserveError]:
        if not resources:
            return {}
        try:
            found = describe_clusters(
                aws.client("rds"), [r.manifest.spec.dbClusterIdentifier for r in resources]
            )
        except aws_errors() as exc:
            message = f"cannot read the DB clusters: {describe_error(exc)}"
            return {r.name: ObserveError(message) for r in resources}
        results: dict[str, ClusterObservation | ObserveError] = {}
        for resource in resources:
            cluster = resource.manifest.spec.dbClusterIdentifier
            item = found.get(cluster.lower())
            results[resource.name] = (
                observation_of(item) if item is not None else ObserveError(f"DB cluster {cluster} not found")
            )
        return results

    def diff(
        self, resource: Resource[AuroraCluster], observed: ClusterObservation | ObserveError, now: datetime
    ) -> Plan:
        if isinstance(observed, ObserveError):
            return Plan(KIND, resource.name, error=observed.message)
        return plan_cluster(resource.name, resource.manifest.spec, observed)

    def apply(self, actions: Sequence[Action], aws: AwsClients) -> list[ApplyResult]:
        def send(action: Action) -> None:
            if action.action != AuroraClusterAction.MODIFY_DB_CLUSTER:
                raise ValueError(f"unknown action {action.action}")
            aws.client("rds").modify_db_cluster(**action.params)

        return send_each(actions, send)

    def wake_times(self, desired: DesiredState, now: datetime) -> list[datetime]:
        return []  # a cluster left for a later pass is seen again at the next resync


def same_cluster_twice(resources: Sequence[Resource[Any]]) -> list[ManifestError]:
    """Two AuroraCluster manifests for one cluster would fight each other: an error at the second.
    Case-insensitive, as RDS stores identifiers in lower case."""
    errors: list[ManifestError] = []
    first_seen: dict[str, Resource[AuroraCluster]] = {}
    for resource in resources:
        if resource.kind != KIND:
            continue
        cluster = resource.manifest.spec.dbClusterIdentifier
        first = first_seen.setdefault(cluster.lower(), resource)
        if first is not resource:
            errors.append(
                ManifestError(
                    resource.source.file,
                    resource.source.line,
                    "spec.dbClusterIdentifier",
                    f"AuroraCluster {resource.name!r} manages DB cluster {cluster!r}, "
                    f"as does AuroraCluster {first.name!r} ({where(first)})",
                )
            )
    return errors


DESCRIPTOR = KindDescriptor(
    kind=KIND,
    model=AuroraCluster,
    order=50,
    example=example_of(AuroraCluster),
    reconciler=AuroraClusterReconciler(),
    actions={AuroraClusterAction.MODIFY_DB_CLUSTER: ("rds:ModifyDBCluster",)},
    corrections=(AuroraClusterAction.MODIFY_DB_CLUSTER,),
    observations=("rds:DescribeDBClusters",),
    gauges=(CLUSTER_AVAILABLE, CAPACITY_MAX_ACU),
    checks=(per_region(same_cluster_twice),),
)
