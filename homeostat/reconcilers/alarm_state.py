"""The effective actionsEnabled of CloudWatch alarms, across AlarmActions and MaintenanceWindow.

Both kinds decide the same alarm property, so the decision is made once, here,
by a pure function (contract section 2, rules 1-4 in order), and every alarm
is attributed to exactly ONE resource: the one whose rule decided it. The
AlarmActions and MaintenanceWindow reconcilers each act only on the alarms
attributed to their own resources, so no two reconcilers touch the same alarm
in a pass and every history row names the resource that decided it.

Attribution:
1. an active window silences it -> that window (rule 1, disable; ties: first name);
2. else an AlarmActions selects it -> that resource (rule 2; ties: first name,
   validation already forbids two with different values);
3. else any window selects it -> that window (rule 3, re-enable; ties: first name);
4. else nobody: the alarm is not managed and never touched.

Suspended resources take part in attribution (their selectors still claim the
alarms) but are not reconciled, so the alarms they decide are left as they are:
`suspend` freezes what a resource governs, it does not hand it to another.

No I/O, no clock: `now` is a parameter wherever time matters.
"""

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from homeostat.desired_state.identifiers import AlarmName, Kind
from homeostat.desired_state.models import AlarmActions, AlarmSelector, MaintenanceWindow
from homeostat.desired_state.state import DesiredState
from homeostat.desired_state.windows import is_active, last_end
from homeostat.reconcilers.actions import Action

DISABLE = "disable_alarm_actions"
ENABLE = "enable_alarm_actions"
DRIFT = "drift"
# An alarm found disabled within this long after a window that selects it ended is
# re-enabled "because the window ended"; later, it was most likely disabled by hand: drift.
ENDED_GRACE = timedelta(hours=1)


class Rule(StrEnum):
    """Which rule of the contract decided an alarm's actionsEnabled."""

    WINDOW_SILENCES = "window silences"
    ALARM_ACTIONS = "alarm actions"
    WINDOW_REENABLES = "window re-enables"


@dataclass(frozen=True, slots=True)
class Decision:
    """The effective actionsEnabled of one alarm and the one resource responsible for it."""

    alarm: AlarmName
    actions_enabled: bool
    kind: Kind
    resource: str
    rule: Rule


def window_started(name: str) -> str:
    return f"maintenance window {name} started"


def window_ended(name: str) -> str:
    return f"maintenance window {name} ended"


def _selects(selectors: Iterable[AlarmSelector], alarm: str) -> bool:
    return any(s.selects(alarm) for s in selectors)


def effective_state(
    alarms: Iterable[str],
    active_windows: Collection[str],
    alarm_actions: Sequence[AlarmActions],
    windows: Sequence[MaintenanceWindow],
) -> dict[AlarmName, Decision]:
    """Per observed alarm that something selects: desired actionsEnabled and who decides it. Pure.

    `active_windows` names the windows active at the instant of interest
    (see `active_window_names`). Alarms selected by nothing are absent.
    """
    ordered_windows = sorted(windows, key=lambda w: w.metadata.name)
    ordered_actions = sorted(alarm_actions, key=lambda a: a.metadata.name)
    silencing = [w for w in ordered_windows if w.metadata.name in active_windows]
    decisions: dict[AlarmName, Decision] = {}
    for raw in alarms:
        alarm = AlarmName(raw)
        decision = _decide(alarm, silencing, ordered_actions, ordered_windows)
        if decision is not None:
            decisions[alarm] = decision
    return decisions


def _live(resource: AlarmActions | MaintenanceWindow) -> bool:
    """Reconciled for real: neither suspended nor dry-run."""
    return not (resource.spec.suspend or resource.spec.dryRun)


def _live_first(resources: Sequence[Any]) -> list[Any]:
    """Live resources before suspended or dry-run ones; by name within each (stable sort)."""
    return sorted(resources, key=lambda r: not _live(r))


def _decide(
    alarm: AlarmName,
    silencing: Sequence[MaintenanceWindow],
    alarm_actions: Sequence[AlarmActions],
    windows: Sequence[MaintenanceWindow],
) -> Decision | None:
    """The contract's four rules in order, preferring live resources at each rule.

    A suspended or dry-run resource decides an alarm only when no live one could: it
    must never keep an alarm silenced that a live window would turn back on after
    maintenance (rule 2 falls through to rule 3 when the selecting AlarmActions is not live).
    """
    for window in _live_first(silencing):
        if _selects(window.spec.silenceAlarms, alarm):
            return Decision(alarm, False, Kind.MAINTENANCE_WINDOW, window.metadata.name, Rule.WINDOW_SILENCES)
    reenabling = [w for w in _live_first(windows) if _selects(w.spec.silenceAlarms, alarm)]
    for resource in _live_first(alarm_actions):
        if resource.spec.selects(alarm):
            if not _live(resource) and reenabling and _live(reenabling[0]):
                break
            return Decision(
                alarm,
                resource.spec.actionsEnabled,
                Kind.ALARM_ACTIONS,
                resource.metadata.name,
                Rule.ALARM_ACTIONS,
            )
    if reenabling:
        window = reenabling[0]
        return Decision(alarm, True, Kind.MAINTENANCE_WINDOW, window.metadata.name, Rule.WINDOW_REENABLES)
    return None


def active_window_names(windows: Sequence[MaintenanceWindow], now: datetime) -> frozenset[str]:
    """Names of the windows active at `now`. Pure."""
    return frozenset(w.metadata.name for w in windows if is_active(w.spec, now))


@dataclass(frozen=True, slots=True)
class AlarmManifests:
    """The alarm-deciding manifests of one desired state, and which of them are suspended."""

    alarm_actions: tuple[AlarmActions, ...]
    windows: tuple[MaintenanceWindow, ...]
    suspended: frozenset[tuple[Kind, str]]

    @classmethod
    def of(cls, desired: DesiredState) -> "AlarmManifests":
        actions = tuple(r.manifest for r in desired.of_kind(Kind.ALARM_ACTIONS))
        windows = tuple(r.manifest for r in desired.of_kind(Kind.MAINTENANCE_WINDOW))
        suspended = frozenset(
            (r.kind, r.name)
            for r in desired.resources
            if r.kind in {Kind.ALARM_ACTIONS, Kind.MAINTENANCE_WINDOW} and r.manifest.spec.suspend
        )
        return cls(
            tuple(a for a in actions if isinstance(a, AlarmActions)),
            tuple(w for w in windows if isinstance(w, MaintenanceWindow)),
            suspended,
        )

    def selectors(self) -> tuple[AlarmSelector, ...]:
        """Every selector of a resource that is reconciled (not suspended): what observe lists."""
        out: list[AlarmSelector] = []
        for resource in self.alarm_actions:
            if (Kind.ALARM_ACTIONS, resource.metadata.name) not in self.suspended:
                out.append(resource.spec)
        for window in self.windows:
            if (Kind.MAINTENANCE_WINDOW, window.metadata.name) not in self.suspended:
                out.extend(window.spec.silenceAlarms)
        return tuple(out)

    def recently_ended(self, now: datetime) -> tuple[MaintenanceWindow, ...]:
        """`recently_ended` of these windows at `now`. Pure."""
        return recently_ended(self.windows, now)

    def decide(self, alarms: Iterable[str], now: datetime) -> dict[AlarmName, Decision]:
        """`effective_state` of these manifests at `now`. Pure."""
        return effective_state(
            alarms, active_window_names(self.windows, now), self.alarm_actions, self.windows
        )


@dataclass(frozen=True, slots=True)
class AlarmChange:
    """One alarm whose live actionsEnabled differs from its effective value."""

    alarm: AlarmName
    before: bool
    after: bool
    reason: str

    @property
    def action(self) -> str:
        return ENABLE if self.after else DISABLE


def recently_ended(
    windows: Sequence[MaintenanceWindow], now: datetime, grace: timedelta = ENDED_GRACE
) -> tuple[MaintenanceWindow, ...]:
    """Windows (by name) that switched off within `grace` before `now`. Pure."""
    out = []
    for window in sorted(windows, key=lambda w: w.metadata.name):
        ended = last_end(window.spec, now)
        if ended is not None and now - ended < grace:
            out.append(window)
    return tuple(out)


def reason_for(decision: Decision, after: bool, ended: Sequence[MaintenanceWindow]) -> str:
    """The history reason of changing one alarm to `after`. Pure.

    Silencing by an active window: `maintenance window <name> started`.
    Enabling an alarm that a window which ended less than ENDED_GRACE ago
    selects (whether a window or an AlarmActions is responsible for it now):
    `maintenance window <name> ended`. Anything else: `drift`.
    """
    if decision.rule == Rule.WINDOW_SILENCES:
        return window_started(decision.resource)
    if after:
        for window in ended:
            if _selects(window.spec.silenceAlarms, decision.alarm):
                return window_ended(window.metadata.name)
    return DRIFT


def changes_for(
    kind: Kind,
    resource: str,
    decisions: Mapping[AlarmName, Decision],
    live: Mapping[str, bool],
    ended: Sequence[MaintenanceWindow] = (),
) -> list[AlarmChange]:
    """The alarms attributed to one resource whose live value differs, with their reasons. Pure.

    `ended` are the windows that ended recently (see `recently_ended`).
    """
    out: list[AlarmChange] = []
    for alarm in sorted(decisions):
        decision = decisions[alarm]
        if decision.kind != kind or decision.resource != resource:
            continue
        current = live.get(alarm)
        if current is None or current == decision.actions_enabled:
            continue
        reason = reason_for(decision, decision.actions_enabled, ended)
        out.append(AlarmChange(alarm, current, decision.actions_enabled, reason))
    return out


def managed_counts(
    decisions: Mapping[AlarmName, Decision], suspended: Collection[tuple[Kind, str]]
) -> dict[str, int]:
    """Managed alarms (decided by a resource that is not suspended) by effective state. Pure."""
    counts = {"enabled": 0, "disabled": 0}
    for decision in decisions.values():
        if (decision.kind, decision.resource) in suspended:
            continue
        counts["enabled" if decision.actions_enabled else "disabled"] += 1
    return counts


def actions_for(kind: Kind, resource: str, changes: Sequence[AlarmChange]) -> tuple[Action, ...]:
    """One Action per changed alarm (target = alarm name). Pure."""
    return tuple(
        Action(
            kind=kind,
            name=resource,
            action=change.action,
            target=change.alarm,
            before={"actionsEnabled": change.before},
            after={"actionsEnabled": change.after},
            reason=change.reason,
            params={"alarmName": change.alarm},
        )
        for change in changes
    )


def sample(names: Sequence[str], limit: int = 10) -> str:
    """A short human list of alarm names for plan notes."""
    shown = ", ".join(names[:limit])
    more = len(names) - limit
    return f"{shown} (+{more} more)" if more > 0 else shown
