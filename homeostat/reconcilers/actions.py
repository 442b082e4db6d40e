"""Actions, plans and apply results: the data every view of a change is made from."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from homeostat.desired_state.identifiers import Kind


class Outcome(StrEnum):
    """What became of an action (the history column; the first four are the `outcome` label).

    `pending` is the journal row written before a mutation is sent; `interrupted` is what a
    pending row found at start-up becomes (the process died before AWS answered).
    """

    APPLIED = "applied"
    FAILED = "failed"
    DRY_RUN = "dry_run"
    CONFLICT = "conflict"
    PENDING = "pending"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True, slots=True)
class Action:
    """One change to AWS, decided by a pure diff.

    `params` holds exactly what apply needs to execute it, so apply decides
    nothing. An action with `conflict` set is reported, never applied.
    """

    kind: Kind
    name: str
    action: StrEnum  # one of the emitting kind's actions (its descriptor lists them)
    target: str
    before: Mapping[str, Any]
    after: Mapping[str, Any]
    reason: str
    params: Mapping[str, Any] = field(default_factory=dict)
    conflict: str | None = None


@dataclass(frozen=True, slots=True)
class GaugeSpec:
    """A gauge a kind sets: declared in its descriptor, so the metrics module defines exactly
    the gauges of the registered kinds (`homeostat_<name>`, with these label names)."""

    name: str
    help: str
    labels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Measurement:
    """A gauge value a reconciler observed (e.g. newest snapshot age).

    Reconcilers do not know prometheus: the operator sets the gauge `metric`
    refers to. A GaugeSpec, not a name: a gauge no descriptor declares is an
    error where it is set, never a silently dropped value.
    """

    metric: GaugeSpec
    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True, slots=True)
class Finding:
    """Something that should have happened and cannot any more (e.g. a snapshot slot
    missed beyond its deadline). Not a change: nothing is applied and the resource is
    not drifted, but the history records it once (outcome failed), although the pure
    diff sees it again on every pass."""

    kind: Kind
    name: str
    action: StrEnum
    target: str
    reason: str
    error: str
    # What the row must remember (a failed deployment: its task definition and manifests digest).
    after: Mapping[str, Any] = field(default_factory=dict)


class RolloutState(StrEnum):
    """A watched ECS deployment (the `state` label of deployment_state)."""

    DEPLOYING = "deploying"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Rollout:
    """The watched deployment of a resource, for classify: deploying and failed are resource
    states of their own (`Deploying`, `DeploymentFailed`), neither drift nor error."""

    state: RolloutState
    message: str


@dataclass(frozen=True, slots=True)
class Plan:
    """The diff of one resource: actions to take, or why it cannot be reconciled.

    `notes` are facts worth showing in `plan` and status (next slot, what a
    window would silence) that are not changes, as sentences. `facts` are the same
    kind of thing as data: a flat mapping of JSON values (strings, numbers, booleans,
    null, lists of those; instants as RFC 3339 UTC strings) taken from what observe
    already read, for the views that tabulate them (`/status`'s `windows`, `slots` and
    `health`, the page, `homeostat status`). Keys a kind may set (docs/commands.md):
    ECSService `running`, `desired`, `rollout`, `taskDefinition`; SnapshotRetention
    `cluster`, `clusterStatus`, `newestSnapshotAgeSeconds`, `nextSlot`; AuroraCluster
    `cluster`, `clusterStatus`; MaintenanceWindow `active`, `start`, `end` (and, when it lists
    clusters, `pendingMaintenance`, `maintenanceWarnings`); the alarm kinds `alarmsInAlarm`.
    """

    kind: Kind
    name: str
    actions: tuple[Action, ...] = ()
    error: str | None = None
    notes: tuple[str, ...] = ()
    measurements: tuple[Measurement, ...] = ()
    findings: tuple[Finding, ...] = ()
    facts: Mapping[str, Any] = field(default_factory=dict)
    rollout: Rollout | None = None

    @property
    def in_sync(self) -> bool:
        return not self.actions and self.error is None

    @property
    def has_conflict(self) -> bool:
        return any(a.conflict for a in self.actions)


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """The AWS outcome of one action: None error means applied."""

    action: Action
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ObserveError:
    """Live state of one resource could not be read; a value, not an exception."""

    message: str
