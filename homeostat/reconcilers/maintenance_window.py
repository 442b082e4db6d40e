"""MaintenanceWindow: silence alarm actions while a window is active, re-enable them after.

Observe: the alarm listing shared with the AlarmActions kind
(`cloudwatch_alarms.SHARED_LISTINGS`). Diff (pure, at `now`): `alarm_state`
attributes each alarm to one resource; a window acts on the alarms it
silences now (rule 1: disable, reason `maintenance window <name> started`)
and on the alarms only windows select (rule 3: enable, reason
`maintenance window <name> ended`). Level-triggered: a pass after the end
re-enables whatever is still disabled, whether or not the start was seen.
Every plan reports `maintenance_window_active{name}` and notes the window's
next start and end and the alarms it would silence.
`wake_times`: the next start and end of every window, so the daemon runs a
pass at each edge.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import ClassVar

from homeostat.desired_state.identifiers import Kind
from homeostat.desired_state.models import MaintenanceWindow, MaintenanceWindowSpec
from homeostat.desired_state.state import DesiredState, Resource
from homeostat.desired_state.windows import edges, wake_instants
from homeostat.reconcilers.actions import Action, ApplyResult, Measurement, ObserveError, Plan
from homeostat.reconcilers.alarm_state import (
    sample,
)
from homeostat.reconcilers.aws import AwsClients
from homeostat.reconcilers.cloudwatch_alarms import (
    AlarmsObserved,
    apply_alarm_actions,
    managed_measurements,
    observe_alarms,
)

WINDOW_ACTIVE = "maintenance_window_active"


def _rfc3339(instant: datetime | None) -> str:
    if instant is None:
        return "never"
    return instant.isoformat(timespec="seconds").replace("+00:00", "Z")


def timing_note(spec: MaintenanceWindowSpec, now: datetime) -> str:
    """`active until E, next start S` or `next start S, end E`. Pure."""
    found = edges(spec, now)
    if found.active:
        return f"active until {_rfc3339(found.next_end)}, next start {_rfc3339(found.next_start)}"
    return f"next start {_rfc3339(found.next_start)}, end {_rfc3339(found.next_end)}"


class MaintenanceWindowReconciler:
    kind: ClassVar[Kind] = Kind.MAINTENANCE_WINDOW

    def observe(
        self, resources: Sequence[Resource], desired: DesiredState, aws: AwsClients, now: datetime
    ) -> Mapping[str, object]:
        return observe_alarms(self.kind, resources, desired, aws, now)

    def diff(self, resource: Resource, observed: object, now: datetime) -> Plan:
        assert isinstance(resource.manifest, MaintenanceWindow)
        spec = resource.manifest.spec
        active = edges(spec, now).active
        measurements: tuple[Measurement, ...] = (
            Measurement(WINDOW_ACTIVE, {"name": resource.name}, 1 if active else 0),
        )
        notes = [timing_note(spec, now)]
        if isinstance(observed, ObserveError):
            return Plan(
                self.kind,
                resource.name,
                error=observed.message,
                notes=tuple(notes),
                measurements=measurements,
            )
        assert isinstance(observed, AlarmsObserved)
        listing = observed.listing
        failures = [e for e in map(listing.error_for, spec.silenceAlarms) if e is not None]
        if failures:
            return Plan(
                self.kind,
                resource.name,
                error=f"{failures[0]}; nothing changed (fail closed)",
                notes=tuple(notes),
                measurements=measurements,
            )
        selected = sorted(n for n in listing.alarms if any(s.selects(n) for s in spec.silenceAlarms))
        verb = "silences" if active else "would silence"
        notes.append(f"{verb} {len(selected)} alarm(s)" + (f": {sample(selected)}" if selected else ""))
        missing = sorted({n for s in spec.silenceAlarms for n in listing.missing(s)})
        if missing:
            notes.append(f"alarm(s) not found: {', '.join(missing)}")
        return Plan(
            self.kind,
            resource.name,
            actions=observed.actions(self.kind, resource.name, now),
            notes=tuple(notes),
            measurements=measurements + managed_measurements(observed, now),
        )

    def apply(self, actions: Sequence[Action], aws: AwsClients) -> list[ApplyResult]:
        return apply_alarm_actions(actions, aws.client("cloudwatch"))

    def wake_times(self, desired: DesiredState, now: datetime) -> list[datetime]:
        instants: set[datetime] = set()
        for resource in desired.of_kind(self.kind):
            if isinstance(resource.manifest, MaintenanceWindow) and not resource.manifest.spec.suspend:
                instants.update(wake_instants(resource.manifest.spec, now))
        return sorted(instants)
