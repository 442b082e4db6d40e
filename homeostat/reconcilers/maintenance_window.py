"""MaintenanceWindow: silence alarm actions while a window is active, re-enable them after.

The kind contributes a window per resource (rules 1 and 3 of the contract) to the one
alarm reconciler (`alarms.py`), which sends every alarm call: while the window is active
it disables the alarms the window silences (reason `maintenance window <name> started`);
after, it re-enables what only windows select (`maintenance window <name> ended`).
Level-triggered: a pass after the end re-enables whatever is still disabled, whether or
not the start was seen.

This module's own reconciler plans the window's timing: its plan notes the window's next
start and end and reports `maintenance_window_active{name}`; `wake_times` are the next
start and end of every window, so the daemon runs a pass at each edge. A window that lists
clusters (`applyPendingMaintenance`) also has their pending Aurora maintenance applied while
an occurrence is active (`pending_maintenance.py` reads and decides; this reconciler sends).

Cost (contract section 6): the pending actions of every listed cluster of every window are
read in one paged call per pass while any window listing clusters is active; otherwise at
most once an hour (the last read is kept on the reconciler instance, built per wiring, and
is read again sooner only when a manifest lists a cluster it did not cover), for the notes.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, model_validator

from homeostat.desired_state.cron import CronExpression, TimeZoneName
from homeostat.desired_state.durations import Duration
from homeostat.desired_state.identifiers import Kind
from homeostat.desired_state.instants import rfc3339
from homeostat.desired_state.models import AlarmSelector, ManifestBase, SpecBase
from homeostat.desired_state.state import DesiredState, Resource
from homeostat.desired_state.windows import current_start, edges, is_active, wake_instants
from homeostat.reconcilers.actions import Action, ApplyResult, GaugeSpec, Measurement, ObserveError, Plan
from homeostat.reconcilers.alarm_state import AlarmWindow
from homeostat.reconcilers.alarms import (
    ALARM_CORRECTIONS,
    ALARM_OBSERVATIONS,
    ALARM_PERMISSIONS,
    ALARMS_MANAGED,
)
from homeostat.reconcilers.aws import AwsClients, client_region
from homeostat.reconcilers.descriptor import KindDescriptor, Shared, example_of
from homeostat.reconcilers.pending_maintenance import (
    IDLE_READ_SECONDS,
    PENDING_OBSERVATIONS,
    PENDING_PERMISSIONS,
    PendingMaintenance,
    PendingMaintenanceAction,
    PendingPlan,
    PendingRead,
    apply_pending,
    plan_pending,
    read_pending,
    remembered_sent,
)
from homeostat.reconcilers.rollouts import Recall

KIND = Kind("MaintenanceWindow")

WINDOW_ACTIVE = GaugeSpec("maintenance_window_active", "1 while the maintenance window is active.", ("name",))


class MaintenanceWindowSpec(SpecBase):
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
    applyPendingMaintenance: Annotated[
        tuple[PendingMaintenance, ...],
        Field(
            description="Aurora clusters whose pending maintenance actions are applied (OptInType "
            "immediate), each once per occurrence, while the window is active."
        ),
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


class MaintenanceWindow(ManifestBase):
    """A recurring or one-off window: selected alarms are silenced, and the listed Aurora clusters'
    pending maintenance is applied, while it is active.

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
          applyPendingMaintenance:
            - dbClusterIdentifier: omnirapeutic-production
              actions: [system-update]
    """

    kind: Literal["MaintenanceWindow"]
    spec: MaintenanceWindowSpec


def window_of(resource: Resource[MaintenanceWindow], now: datetime) -> AlarmWindow:
    """The alarm window one MaintenanceWindow contributes at `now`. Pure."""
    spec = resource.manifest.spec
    held = spec.held(now)
    return AlarmWindow(
        KIND,
        resource.name,
        spec.silenceAlarms,
        spec,
        live=not (held or spec.dryRun),
        suspended=held,
    )


def _rfc3339(instant: datetime | None) -> str:
    return "never" if instant is None else rfc3339(instant, "seconds")


def window_facts(spec: MaintenanceWindowSpec, now: datetime) -> dict[str, Any]:
    """The Plan facts of a window (see Plan): the occurrence active now, else the next one. Pure."""
    found = edges(spec, now)
    start = current_start(spec, now) if found.active else found.next_start
    return {
        "active": found.active,
        "start": None if start is None else rfc3339(start, "seconds"),
        "end": None if found.next_end is None else rfc3339(found.next_end, "seconds"),
    }


def timing_note(spec: MaintenanceWindowSpec, now: datetime) -> str:
    """`active until E, next start S` or `next start S, end E`. Pure."""
    found = edges(spec, now)
    if found.active:
        return f"active until {_rfc3339(found.next_end)}, next start {_rfc3339(found.next_start)}"
    return f"next start {_rfc3339(found.next_start)}, end {_rfc3339(found.next_end)}"


@dataclass(frozen=True, slots=True)
class WindowObservation:
    """What one window's plan needs beyond its spec: the pass's read of the pending maintenance
    of its clusters (None: it lists none) and what the history remembers it applied (None: no
    history, as in `plan`, or not asked: the window was not active when observed)."""

    read: PendingRead | None = None
    sent: frozenset[tuple[str, str, str]] | None = None


class MaintenanceWindowReconciler:
    """The window's own plan: timing, gauge, and the pending maintenance of its clusters."""

    kinds = (KIND,)

    def __init__(self, recall: Recall | None = None) -> None:
        self.recall = recall
        # The last read of pending maintenance per region (of the RDS client; the pass observes
        # each region on its own): reused outside active windows for an hour.
        self._last_read: dict[str | None, PendingRead] = {}

    def observe(
        self,
        resources: Sequence[Resource[MaintenanceWindow]],
        desired: DesiredState,
        aws: AwsClients,
        now: datetime,
    ) -> Mapping[str, WindowObservation | ObserveError]:
        listing = [r for r in resources if r.manifest.spec.applyPendingMaintenance]
        clusters = sorted(
            {p.dbClusterIdentifier.lower() for r in listing for p in r.manifest.spec.applyPendingMaintenance}
        )
        active = {r.name for r in listing if is_active(r.manifest.spec, now)}
        read = self._read(aws, clusters, now, active=bool(active)) if clusters else None
        # The history is asked only for an active window: a read taken before its occurrence
        # began is never acted on, so an inactive one needs no memory.
        return {
            r.name: WindowObservation(
                read, remembered_sent(self.recall, KIND, r.name) if r.name in active else None
            )
            if r.manifest.spec.applyPendingMaintenance
            else WindowObservation()
            for r in resources
        }

    def _read(self, aws: AwsClients, clusters: Sequence[str], now: datetime, *, active: bool) -> PendingRead:
        """A new read while a window listing clusters is active, else the last one for an hour."""
        rds = aws.client("rds")
        region = client_region(rds)
        last = self._last_read.get(region)
        if (
            not active
            and last is not None
            and last.covers(clusters)
            and 0 <= (now - last.read_at).total_seconds() < IDLE_READ_SECONDS
        ):
            return last
        read = self._last_read[region] = read_pending(rds, clusters, now)
        return read

    def diff(
        self, resource: Resource[MaintenanceWindow], observed: WindowObservation | ObserveError, now: datetime
    ) -> Plan:
        spec = resource.manifest.spec
        active = edges(spec, now).active
        pending = (
            plan_pending(
                KIND, resource.name, spec, spec.applyPendingMaintenance, observed.read, observed.sent, now
            )
            if isinstance(observed, WindowObservation)
            else PendingPlan()
        )
        return Plan(
            KIND,
            resource.name,
            actions=pending.actions,
            error=observed.message if isinstance(observed, ObserveError) else pending.error,
            notes=(timing_note(spec, now), *pending.notes),
            measurements=(Measurement(WINDOW_ACTIVE, {"name": resource.name}, 1 if active else 0),),
            facts={**window_facts(spec, now), **pending.facts},
        )

    def apply(self, actions: Sequence[Action], aws: AwsClients) -> list[ApplyResult]:
        return [
            ApplyResult(a, apply_pending(aws.client("rds"), a))
            if a.action == PendingMaintenanceAction.APPLY_PENDING_MAINTENANCE
            else ApplyResult(a, f"unknown action {a.action}")
            for a in actions
        ]

    def wake_times(self, desired: DesiredState, now: datetime) -> list[datetime]:
        instants: set[datetime] = set()
        for resource in desired.of_kind(KIND):
            if not resource.manifest.spec.held(now):
                instants.update(wake_instants(resource.manifest.spec, now))
        return sorted(instants)


def _reconciler(shared: Shared) -> MaintenanceWindowReconciler:
    return MaintenanceWindowReconciler(shared.recall)


DESCRIPTOR = KindDescriptor(
    kind=KIND,
    model=MaintenanceWindow,
    order=30,
    example=example_of(MaintenanceWindow),
    reconciler=None,
    make_reconciler=_reconciler,  # it remembers its last read of pending maintenance
    # The alarm rows are the alarm reconciler's, named after the window; the pending
    # maintenance rows its own.
    actions={**ALARM_PERMISSIONS, **PENDING_PERMISSIONS},
    corrections=ALARM_CORRECTIONS,  # an alarm changed back during a window is drift too
    observations=(*ALARM_OBSERVATIONS, *PENDING_OBSERVATIONS),
    gauges=(WINDOW_ACTIVE, ALARMS_MANAGED),
    alarm_rules=window_of,
)
