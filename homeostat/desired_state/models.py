"""Manifest models: one frozen pydantic model per kind, strict and documented.

Field descriptions here are the single source of the JSON Schema (`homeostat
schema`) and editor tooltips. Cross-document rules (duplicate names,
conflicting selectors) live in `validation.py`; this module checks one document.
"""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    model_validator,
)

from homeostat.desired_state.cron import CronExpression, TimeZoneName
from homeostat.desired_state.durations import Duration
from homeostat.desired_state.identifiers import API_VERSION, Kind

NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
AWS_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:/+=@-]{0,254}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)


class Metadata(_Strict):
    name: Annotated[
        str,
        Field(
            pattern=NAME_PATTERN,
            min_length=1,
            max_length=63,
            description="1-63 characters of [a-z0-9-], starting and ending alphanumeric; unique per kind.",
        ),
    ]
    labels: Annotated[dict[str, str], Field(default_factory=dict, description="Free-form string labels.")]


class _Spec(_Strict):
    suspend: Annotated[
        StrictBool, Field(description="Not reconciled at all while true; status says Suspended.")
    ] = False
    dryRun: Annotated[
        StrictBool,
        Field(description="Observed and diffed; actions are recorded as dry-run, never applied."),
    ] = False


class AutoscalingBounds(_Strict):
    minCapacity: Annotated[StrictInt, Field(ge=0, description="Scalable target MinCapacity.")]
    maxCapacity: Annotated[StrictInt, Field(ge=0, description="Scalable target MaxCapacity.")]

    @model_validator(mode="after")
    def _ordered(self) -> "AutoscalingBounds":
        if self.minCapacity > self.maxCapacity:
            raise ValueError("minCapacity must not exceed maxCapacity")
        return self


class ECSServiceSpec(_Spec):
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
        return self


class RetentionPolicy(_Strict):
    maxAge: Annotated[Duration, Field(description="Owned snapshots older than this are deleted.")]
    minKeep: Annotated[
        StrictInt, Field(ge=0, description="Never fewer owned, available snapshots than this.")
    ] = 1
    maxDeletionsPerRun: Annotated[
        StrictInt, Field(ge=1, le=1000, description="Safety cap on deletions per reconcile pass.")
    ] = 20


class SnapshotRetentionSpec(_Spec):
    dbClusterIdentifier: Annotated[
        str,
        Field(pattern=r"^[A-Za-z][A-Za-z0-9-]{0,62}$", description="Aurora DB cluster identifier."),
    ]
    snapshotPrefix: Annotated[
        str,
        Field(
            pattern=r"^[A-Za-z][A-Za-z0-9-]{0,200}$",
            description="The manual snapshots this resource owns start with this prefix.",
        ),
    ]
    schedule: Annotated[CronExpression | None, Field(description="When to take a snapshot (cron).")] = None
    timeZone: Annotated[TimeZoneName, Field(description="IANA time zone of the schedule.")] = "UTC"
    startingDeadline: Annotated[
        Duration,
        # A string default, validated, so that the JSON Schema shows "1h" rather than ISO 8601.
        Field(
            default="1h", validate_default=True, description="A slot missed by less than this is still taken."
        ),
    ]
    retention: Annotated[RetentionPolicy, Field(description="Which owned snapshots to delete.")]
    protect: Annotated[
        tuple[Annotated[str, Field(min_length=1)], ...],
        Field(description="Glob patterns of snapshot identifiers never deleted."),
    ] = ()


class AlarmSelector(_Strict):
    alarmNamePrefix: Annotated[
        str | None,
        Field(min_length=1, max_length=255, description="Select alarms whose name starts with this."),
    ] = None
    alarmNames: Annotated[
        tuple[Annotated[str, Field(min_length=1, max_length=255)], ...] | None,
        Field(min_length=1, description="Select these alarms by exact name."),
    ] = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "AlarmSelector":
        if (self.alarmNamePrefix is None) == (self.alarmNames is None):
            raise ValueError("give exactly one of alarmNamePrefix or alarmNames")
        return self

    def selects(self, alarm_name: str) -> bool:
        if self.alarmNamePrefix is not None:
            return alarm_name.startswith(self.alarmNamePrefix)
        return alarm_name in (self.alarmNames or ())


class AlarmActionsSpec(AlarmSelector, _Spec):
    actionsEnabled: Annotated[StrictBool, Field(description="Desired ActionsEnabled of the selected alarms.")]


class MaintenanceWindowSpec(_Spec):
    schedule: Annotated[CronExpression | None, Field(description="When the window starts (cron).")] = None
    duration: Annotated[Duration | None, Field(description="How long each window lasts (real time).")] = None
    timeZone: Annotated[TimeZoneName, Field(description="IANA time zone of the schedule.")] = "UTC"
    start: Annotated[
        AwareDatetime | None, Field(description="One-off window start (RFC 3339 with offset).")
    ] = None
    end: Annotated[AwareDatetime | None, Field(description="One-off window end (RFC 3339 with offset).")] = (
        None
    )
    silenceAlarms: Annotated[
        tuple[AlarmSelector, ...],
        Field(description="Alarms whose actions are disabled while the window is active."),
    ] = ()

    @model_validator(mode="after")
    def _recurring_or_one_off(self) -> "MaintenanceWindowSpec":
        recurring = self.schedule is not None or self.duration is not None
        one_off = self.start is not None or self.end is not None
        if recurring and one_off:
            raise ValueError("give either schedule and duration, or start and end, not both")
        if recurring and (self.schedule is None or self.duration is None):
            raise ValueError("a recurring window needs both schedule and duration")
        if one_off:
            if self.start is None or self.end is None:
                raise ValueError("a one-off window needs both start and end")
            if self.start >= self.end:
                raise ValueError("start must be before end")
        if not recurring and not one_off:
            raise ValueError("give schedule and duration, or start and end")
        return self

    @property
    def one_off(self) -> tuple[datetime, datetime] | None:
        if self.start is not None and self.end is not None:
            return (self.start, self.end)
        return None


class _Manifest(_Strict):
    apiVersion: Annotated[Literal["homeostat/v1"], Field(description=f"Always {API_VERSION}.")]
    metadata: Metadata


class ECSService(_Manifest):
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

    kind: Literal[Kind.ECS_SERVICE]
    spec: ECSServiceSpec


class SnapshotRetention(_Manifest):
    """Scheduled manual Aurora cluster snapshots and their retention.

    Example:
        apiVersion: homeostat/v1
        kind: SnapshotRetention
        metadata: {name: aurora-manual}
        spec:
          dbClusterIdentifier: omnirapeutic-production
          snapshotPrefix: omnirapeutic-prod-manual-
          schedule: "0 3 * * *"
          retention: {maxAge: 7d, minKeep: 1, maxDeletionsPerRun: 20}
          protect: ["omnirapeutic-emergency-*"]
    """

    kind: Literal[Kind.SNAPSHOT_RETENTION]
    spec: SnapshotRetentionSpec


class AlarmActions(_Manifest):
    """Desired ActionsEnabled of CloudWatch alarms selected by prefix or names.

    Example:
        apiVersion: homeostat/v1
        kind: AlarmActions
        metadata: {name: production-alarms}
        spec:
          alarmNamePrefix: omnirapeutic-production
          actionsEnabled: true
    """

    kind: Literal[Kind.ALARM_ACTIONS]
    spec: AlarmActionsSpec


class MaintenanceWindow(_Manifest):
    """A recurring or one-off window during which selected alarms are silenced.

    Example:
        apiVersion: homeostat/v1
        kind: MaintenanceWindow
        metadata: {name: sunday-maintenance}
        spec:
          schedule: "0 2 * * SUN"
          duration: 4h
          timeZone: UTC
          silenceAlarms:
            - alarmNamePrefix: omnirapeutic-production
    """

    kind: Literal[Kind.MAINTENANCE_WINDOW]
    spec: MaintenanceWindowSpec


Manifest = Annotated[
    ECSService | SnapshotRetention | AlarmActions | MaintenanceWindow,
    Field(discriminator="kind"),
]
MANIFEST_TYPES: dict[Kind, type[_Manifest]] = {
    Kind.ECS_SERVICE: ECSService,
    Kind.SNAPSHOT_RETENTION: SnapshotRetention,
    Kind.ALARM_ACTIONS: AlarmActions,
    Kind.MAINTENANCE_WINDOW: MaintenanceWindow,
}
AnyManifest = ECSService | SnapshotRetention | AlarmActions | MaintenanceWindow
