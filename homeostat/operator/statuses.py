"""The values of a pass: each resource's state and status, the pass's report, and the one
classification of a resource's result.

What every view reads (run --once's table, `plan`, `/status`, `homeostat status` and the
page, the reporter's metrics): pure values, apart from the machinery that produces them
(passes.py observes, diffs and executes), so a view never depends on AWS, the executor, the
fight watch or the history (an import-linter contract keeps it so).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from homeostat.desired_state.identifiers import Kind
from homeostat.desired_state.models import Hold
from homeostat.desired_state.state import Resource
from homeostat.operator.clock import rfc3339
from homeostat.operator.records import ActionRecord
from homeostat.operator.values import value_text
from homeostat.reconcilers.actions import Outcome, Plan, RolloutState


class State(StrEnum):
    IN_SYNC = "InSync"
    FIXED = "Fixed"
    DRIFTED = "Drifted"
    CONFLICT = "Conflict"
    ERROR = "Error"
    SUSPENDED = "Suspended"
    BACKING_OFF = "BackingOff"
    NOT_REACHED = "NotReached"
    # A watched ECS deployment (issue 13): settling, or failed and held back. Neither drift nor error.
    DEPLOYING = "Deploying"
    DEPLOYMENT_FAILED = "DeploymentFailed"
    # Something else keeps changing a field back (contract 2.1): corrections withheld.
    FIGHTING = "Fighting"


class Result(StrEnum):
    """The `result` label of reconcile_total."""

    SUCCESS = "success"
    ERROR = "error"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class ResourceStatus:
    kind: Kind
    name: str
    state: State
    message: str
    last_reconcile: datetime | None
    plan: Plan | None = None
    records: tuple[ActionRecord, ...] = ()
    suspension: Hold | None = None  # a bounded hold in force (state Suspended)
    # The AWS region it is reconciled in (`spec.region`, else the daemon's); None when the
    # clients know no region (test doubles).
    region: str | None = None

    @property
    def in_sync(self) -> bool:
        return self.state in {State.IN_SYNC, State.FIXED}

    @property
    def result(self) -> Result:
        if self.state in {State.SUSPENDED, State.BACKING_OFF, State.NOT_REACHED, State.FIGHTING}:
            return Result.SKIPPED
        return Result.ERROR if self.state == State.ERROR else Result.SUCCESS

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "name": self.name,
            "region": self.region,
            "state": str(self.state),
            "inSync": self.in_sync,
            "message": self.message,
            "lastReconcile": rfc3339(self.last_reconcile) if self.last_reconcile else None,
            "facts": dict(self.plan.facts) if self.plan is not None else {},
            # A bounded hold's {until, reason} while it holds (contract section 5); else null.
            "suspension": (
                {"until": rfc3339(self.suspension.until), "reason": self.suspension.reason}
                if self.suspension is not None
                else None
            ),
        }


@dataclass(slots=True)
class PassReport:
    revision: str
    started: datetime
    statuses: list[ResourceStatus] = field(default_factory=list)
    # Observe, diff and apply seconds per kind that ran: the reporter's reconcile_duration_seconds.
    seconds_by_kind: dict[Kind, float] = field(default_factory=dict)

    @property
    def records(self) -> list[ActionRecord]:
        return [r for s in self.statuses for r in s.records]

    @property
    def errors(self) -> list[ResourceStatus]:
        return [s for s in self.statuses if s.state == State.ERROR]

    @property
    def drifted(self) -> list[ResourceStatus]:
        return [s for s in self.statuses if s.state in {State.DRIFTED, State.CONFLICT}]


def suspended_status(resource: Resource[Any], region: str | None = None) -> ResourceStatus:
    """The status of a resource held at the pass's instant: its reason and expiry, if bounded."""
    hold = resource.manifest.spec.hold
    if hold is None:
        message = "suspended in the manifest"
    else:
        message = f"suspended until {rfc3339(hold.until, 'seconds')}: {hold.reason}"
    return ResourceStatus(
        resource.kind, resource.name, State.SUSPENDED, message, None, suspension=hold, region=region
    )


def classify(plan: Plan, records: Sequence[ActionRecord], *, dry_run: bool) -> tuple[State, str]:
    """The state and status message of one resource after its actions ran. Pure."""
    if plan.error is not None:
        return State.ERROR, plan.error
    rollout = plan.rollout
    if not plan.actions and rollout is not None and rollout.state != RolloutState.COMPLETED:
        state = State.DEPLOYING if rollout.state == RolloutState.DEPLOYING else State.DEPLOYMENT_FAILED
        return state, rollout.message
    if not plan.actions:
        return State.IN_SYNC, "; ".join(("in sync", *plan.notes))
    failed = [r for r in records if r.outcome == Outcome.FAILED]
    if failed:
        return State.ERROR, "; ".join(r.error or r.action for r in failed)
    conflicts = [a.conflict for a in plan.actions if a.conflict]
    if conflicts:
        return State.CONFLICT, f"Conflict: {conflicts[0]}"
    # Each action named with its target: two alarms of one policy are two different changes.
    done = "; ".join(f"{a.action} {value_text(a.target)} ({a.reason})" for a in plan.actions)
    return (State.DRIFTED, f"dry run: {done}") if dry_run else (State.FIXED, f"fixed: {done}")
