"""One reconcile pass: observe each kind once, diff each resource, execute, classify.

Shared by `run --once`, `plan` (which executes nothing) and the daemon loop,
so all three see the same plans. Classification of a resource's result
happens here and only here.
"""

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from homeostat.desired_state.identifiers import Kind
from homeostat.desired_state.state import DesiredState, Resource
from homeostat.metrics import Metrics
from homeostat.operator.clock import rfc3339
from homeostat.operator.execution import Executor
from homeostat.operator.records import ActionRecord
from homeostat.reconcilers.actions import ObserveError, Outcome, Plan
from homeostat.reconcilers.aws import AwsClients
from homeostat.reconcilers.base import Reconciler


class State(StrEnum):
    IN_SYNC = "InSync"
    FIXED = "Fixed"
    DRIFTED = "Drifted"
    CONFLICT = "Conflict"
    ERROR = "Error"
    SUSPENDED = "Suspended"
    BACKING_OFF = "BackingOff"
    NOT_REACHED = "NotReached"


class Result(StrEnum):
    """The `result` label of reconcile_total."""

    SUCCESS = "success"
    ERROR = "error"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class ResourceStatus:
    kind: str
    name: str
    state: State
    message: str
    last_reconcile: datetime | None
    plan: Plan | None = None
    records: tuple[ActionRecord, ...] = ()

    @property
    def in_sync(self) -> bool:
        return self.state in {State.IN_SYNC, State.FIXED}

    @property
    def result(self) -> Result:
        if self.state in {State.SUSPENDED, State.BACKING_OFF, State.NOT_REACHED}:
            return Result.SKIPPED
        return Result.ERROR if self.state == State.ERROR else Result.SUCCESS

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "state": str(self.state),
            "inSync": self.in_sync,
            "message": self.message,
            "lastReconcile": rfc3339(self.last_reconcile) if self.last_reconcile else None,
        }


@dataclass(slots=True)
class PassReport:
    revision: str
    started: datetime
    statuses: list[ResourceStatus] = field(default_factory=list)

    @property
    def records(self) -> list[ActionRecord]:
        return [r for s in self.statuses for r in s.records]

    @property
    def errors(self) -> list[ResourceStatus]:
        return [s for s in self.statuses if s.state == State.ERROR]

    @property
    def drifted(self) -> list[ResourceStatus]:
        return [s for s in self.statuses if s.state in {State.DRIFTED, State.CONFLICT}]


Skip = Callable[[Resource], str | None]


def _never_skip(_resource: Resource) -> str | None:
    return None


def observe_and_diff(
    desired: DesiredState,
    reconcilers: Mapping[Kind, Reconciler],
    aws: AwsClients,
    now: datetime,
    skip: Skip = _never_skip,
    timings: dict[str, float] | None = None,
) -> tuple[list[tuple[Reconciler, Resource, Plan]], list[ResourceStatus]]:
    """Plans for every active resource, and statuses of those not reconciled this pass.

    `timings` (when given) receives the observe+diff seconds per kind.
    """
    planned: list[tuple[Reconciler, Resource, Plan]] = []
    skipped: list[ResourceStatus] = []
    for kind, reconciler in reconcilers.items():
        active: list[Resource] = []
        for resource in desired.of_kind(kind):
            reason = "suspended in the manifest" if resource.manifest.spec.suspend else skip(resource)
            if reason is None:
                active.append(resource)
            else:
                state = State.SUSPENDED if resource.manifest.spec.suspend else State.BACKING_OFF
                skipped.append(ResourceStatus(str(kind), resource.name, state, reason, None))
        if not active:
            continue
        started = time.monotonic()
        try:
            observed: Mapping[str, object] = reconciler.observe(active, desired, aws, now)
        except Exception as exc:  # noqa: BLE001 - a bug or AWS failure in one kind must not stop the others
            observed = {r.name: ObserveError(f"observe failed: {type(exc).__name__}: {exc}") for r in active}
        for resource in active:
            live = observed.get(resource.name, ObserveError("not observed"))
            try:
                plan = reconciler.diff(resource, live, now)
            except Exception as exc:  # noqa: BLE001 - one resource's failure is that resource's error
                plan = Plan(kind, resource.name, error=f"diff failed: {type(exc).__name__}: {exc}")
            planned.append((reconciler, resource, plan))
        if timings is not None:
            timings[str(kind)] = time.monotonic() - started
    return planned, skipped


def classify(plan: Plan, records: Sequence[ActionRecord], *, dry_run: bool) -> tuple[State, str]:
    """The state and status message of one resource after its actions ran. Pure."""
    if plan.error is not None:
        return State.ERROR, plan.error
    if not plan.actions:
        return State.IN_SYNC, "; ".join(("in sync", *plan.notes))
    failed = [r for r in records if r.outcome == Outcome.FAILED]
    if failed:
        return State.ERROR, "; ".join(r.error or r.action for r in failed)
    conflicts = [a.conflict for a in plan.actions if a.conflict]
    if conflicts:
        return State.CONFLICT, f"Conflict: {conflicts[0]}"
    if dry_run:
        return State.DRIFTED, "dry run: " + "; ".join(a.reason for a in plan.actions)
    return State.FIXED, "fixed: " + "; ".join(a.reason for a in plan.actions)


def run_pass(
    desired: DesiredState,
    reconcilers: Mapping[Kind, Reconciler],
    aws: AwsClients,
    executor: Executor,
    *,
    now: datetime,
    dry_run: bool,
    metrics: Metrics | None = None,
    skip: Skip = _never_skip,
    should_stop: Callable[[], bool] = lambda: False,
) -> PassReport:
    """Reconcile every resource once. Stops between resources when asked to (SIGTERM)."""
    report = PassReport(revision=desired.revision, started=now)
    seconds_by_kind: dict[str, float] = {}
    planned, skipped = observe_and_diff(desired, reconcilers, aws, now, skip, seconds_by_kind)
    report.statuses.extend(skipped)
    for reconciler, resource, plan in planned:
        kind = str(resource.kind)
        if should_stop():
            report.statuses.append(
                ResourceStatus(kind, resource.name, State.NOT_REACHED, "shutting down", None)
            )
            continue
        started = time.monotonic()
        resource_dry_run = dry_run or resource.manifest.spec.dryRun
        records = executor.execute(
            reconciler, plan.actions, aws, revision=desired.revision, dry_run=resource_dry_run
        )
        state, message = classify(plan, records, dry_run=resource_dry_run)
        # Findings are reported (once), never classified: they do not make a resource fail or drift.
        records += executor.record_findings(plan.findings, revision=desired.revision)
        report.statuses.append(
            ResourceStatus(kind, resource.name, state, message, executor.clock(), plan, tuple(records))
        )
        seconds_by_kind[kind] = seconds_by_kind.get(kind, 0.0) + time.monotonic() - started
        if metrics is not None:
            for measurement in plan.measurements:
                metrics.set_measurement(measurement.metric, dict(measurement.labels), measurement.value)
    if metrics is not None:
        _update_metrics(metrics, report, seconds_by_kind)
    return report


def _update_metrics(metrics: Metrics, report: PassReport, seconds_by_kind: dict[str, float]) -> None:
    for status in report.statuses:
        metrics.reconcile_total.labels(kind=status.kind, result=str(status.result)).inc()
        if status.state not in {State.BACKING_OFF, State.NOT_REACHED}:
            metrics.resource_in_sync.labels(kind=status.kind, name=status.name).set(
                1 if status.in_sync else 0
            )
    for kind, seconds in seconds_by_kind.items():
        metrics.reconcile_duration_seconds.labels(kind=kind).observe(seconds)
    # last_pass_timestamp_seconds belongs to the daemon: only it knows whether a pass completed.
