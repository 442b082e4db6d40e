"""AlarmActions: the declared actionsEnabled of CloudWatch alarms selected by prefix or names.

Observe: the alarm listing shared with the MaintenanceWindow kind
(`cloudwatch_alarms.SHARED_LISTINGS`: DescribeAlarms, 100 per page per
minimal prefix, names in batches of 100). Diff (pure): `alarm_state` decides
every alarm's effective actionsEnabled and the one resource responsible; an
AlarmActions resource acts only on the alarms rule 2 gives it (alarms an
active window silences belong to that window). Changes carry the reason
`drift`. A by-name selector naming an alarm that does not exist is an error
of this resource (the alarms that do exist are still reconciled).
Apply: Enable/DisableAlarmActions, up to 100 names per call.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import ClassVar

from homeostat.desired_state.identifiers import Kind
from homeostat.desired_state.models import AlarmActions
from homeostat.desired_state.state import DesiredState, Resource
from homeostat.reconcilers.actions import Action, ApplyResult, ObserveError, Plan
from homeostat.reconcilers.alarm_state import (
    Rule,
)
from homeostat.reconcilers.aws import AwsClients
from homeostat.reconcilers.cloudwatch_alarms import (
    AlarmsObserved,
    apply_alarm_actions,
    managed_measurements,
    observe_alarms,
)


class AlarmActionsReconciler:
    kind: ClassVar[Kind] = Kind.ALARM_ACTIONS

    def observe(
        self, resources: Sequence[Resource], desired: DesiredState, aws: AwsClients, now: datetime
    ) -> Mapping[str, object]:
        return observe_alarms(self.kind, resources, desired, aws, now)

    def diff(self, resource: Resource, observed: object, now: datetime) -> Plan:
        if isinstance(observed, ObserveError):
            return Plan(self.kind, resource.name, error=observed.message)
        assert isinstance(observed, AlarmsObserved)
        assert isinstance(resource.manifest, AlarmActions)
        spec = resource.manifest.spec
        listing = observed.listing
        failure = listing.error_for(spec)
        if failure is not None:
            return Plan(self.kind, resource.name, error=f"{failure}; nothing changed (fail closed)")
        decisions = observed.resolve(now).decisions
        selected = [name for name in listing.alarms if spec.selects(name)]
        silenced = [
            name for name in selected if name in decisions and decisions[name].rule == Rule.WINDOW_SILENCES
        ]
        notes = [f"selects {len(selected)} alarm(s), actionsEnabled {str(spec.actionsEnabled).lower()}"]
        if silenced:
            windows = sorted({decisions[name].resource for name in silenced})
            notes.append(
                f"{len(silenced)} of them silenced now by maintenance window(s) {', '.join(windows)}"
            )
        missing = listing.missing(spec)
        error = f"alarm(s) not found: {', '.join(missing)}" if missing else None
        return Plan(
            self.kind,
            resource.name,
            actions=observed.actions(self.kind, resource.name, now),
            error=error,
            notes=tuple(notes),
            measurements=managed_measurements(observed, now),
        )

    def apply(self, actions: Sequence[Action], aws: AwsClients) -> list[ApplyResult]:
        return apply_alarm_actions(actions, aws.client("cloudwatch"))

    def wake_times(self, desired: DesiredState, now: datetime) -> list[datetime]:
        # Window edges change which alarms this kind decides; the MaintenanceWindow
        # reconciler already asks for a (whole) pass at each of them.
        return []
