"""The effective actionsEnabled of CloudWatch alarms: the contract's rules, once, purely.

Several kinds decide the same alarm property (AlarmActions values, MaintenanceWindow
silences), so the decision is made once per pass, here, over neutral values the kinds
contribute through their descriptors (`AlarmPolicy`, `AlarmWindow`): this module knows
no kind model. Every alarm is attributed to exactly ONE resource, the one whose rule
decided it, and every history row names that resource.

Attribution (contract section 2, rules 1-4 in order):
1. an active window silences it -> that window (disable; ties: first name);
2. else a policy (AlarmActions) selects it -> that resource (ties: first name;
   validation already forbids two with different values);
3. else any window selects it -> that window (re-enable; ties: first name);
4. else nobody: the alarm is not managed and never touched.

Suspended resources take part in attribution (their selectors still claim the alarms)
but are not reconciled, so the alarms they decide are left as they are: `suspend`
freezes what a resource governs, it does not hand it to another. A suspended or
dry-run resource decides an alarm only when no live one could.

Reasons: silencing is `maintenance window <name> started`; a re-enable is
`maintenance window <name> ended` only when that window's end is what changed the
alarm's effective state (just before the end the alarm was off because of that window,
at the end it turned on, and it is on now) and no pass has seen or made the alarm match
its effective state since that end; anything else is `drift` (e.g. actions disabled by
hand after the window ended).

No I/O, no clock: `now` (and when each alarm was last seen settled) are parameters.
"""

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from homeostat.desired_state.identifiers import AlarmName, Kind
from homeostat.desired_state.models import AlarmSelector
from homeostat.desired_state.state import Resource
from homeostat.desired_state.windows import Timing, is_active, last_end
from homeostat.reconcilers.actions import Action

DRIFT = "drift"
# Windows are half-open: this long before its end, an occurrence is still active.
JUST_BEFORE = timedelta(microseconds=1)


class AlarmAction(StrEnum):
    """The actions the alarm reconciler records (contract strings)."""

    DISABLE = "disable_alarm_actions"
    ENABLE = "enable_alarm_actions"


class Rule(StrEnum):
    """Which rule of the contract decided an alarm's actionsEnabled."""

    WINDOW_SILENCES = "window silences"
    ALARM_ACTIONS = "alarm actions"
    WINDOW_REENABLES = "window re-enables"


@dataclass(frozen=True, slots=True)
class AlarmPolicy:
    """Rule 2's input: a resource that wants its alarms' actionsEnabled at one value."""

    kind: Kind
    name: str
    selector: AlarmSelector
    actions_enabled: bool
    live: bool = True  # reconciled for real: neither suspended nor dry-run
    suspended: bool = False


@dataclass(frozen=True, slots=True)
class AlarmWindow:
    """Rules 1 and 3's input: a window that silences its alarms while active."""

    kind: Kind
    name: str
    selectors: tuple[AlarmSelector, ...]
    timing: Timing
    live: bool = True
    suspended: bool = False

    def selects(self, alarm: str) -> bool:
        return any(s.selects(alarm) for s in self.selectors)


# What a contributing kind's descriptor gives the alarm reconciler for one of its resources.
# A resource's contribution at an instant (a bounded hold decides whether it is suspended then).
Contribute = Callable[[Resource[Any], datetime], AlarmPolicy | AlarmWindow]


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


Contributor = TypeVar("Contributor", AlarmPolicy, AlarmWindow)


def _live_first(resources: Iterable[Contributor]) -> list[Contributor]:
    """Live resources before suspended or dry-run ones; by name within each."""
    return sorted(resources, key=lambda r: (not r.live, r.name))


def _decide(
    alarm: AlarmName,
    silencing: Sequence[AlarmWindow],
    policies: Sequence[AlarmPolicy],
    windows: Sequence[AlarmWindow],
) -> Decision | None:
    """The contract's four rules in order, preferring live resources at each rule.

    A suspended or dry-run resource must never keep an alarm silenced that a live window
    would turn back on after maintenance (rule 2 falls through to rule 3 when the
    selecting policy is not live).
    """
    for window in silencing:
        if window.selects(alarm):
            return Decision(alarm, False, window.kind, window.name, Rule.WINDOW_SILENCES)
    reenabling = [w for w in windows if w.selects(alarm)]
    for policy in policies:
        if policy.selector.selects(alarm):
            if not policy.live and reenabling and reenabling[0].live:
                break
            return Decision(alarm, policy.actions_enabled, policy.kind, policy.name, Rule.ALARM_ACTIONS)
    if reenabling:
        window = reenabling[0]
        return Decision(alarm, True, window.kind, window.name, Rule.WINDOW_REENABLES)
    return None


def effective_state(
    alarms: Iterable[str],
    active_windows: Collection[str],
    policies: Sequence[AlarmPolicy],
    windows: Sequence[AlarmWindow],
) -> dict[AlarmName, Decision]:
    """Per observed alarm that something selects: desired actionsEnabled and who decides it. Pure.

    `active_windows` names the windows active at the instant of interest. Alarms selected
    by nothing are absent.
    """
    ordered_windows = _live_first(windows)
    ordered_policies = _live_first(policies)
    silencing = [w for w in ordered_windows if w.name in active_windows]
    decisions: dict[AlarmName, Decision] = {}
    for raw in alarms:
        alarm = AlarmName(raw)
        decision = _decide(alarm, silencing, ordered_policies, ordered_windows)
        if decision is not None:
            decisions[alarm] = decision
    return decisions


def active_window_names(windows: Sequence[AlarmWindow], now: datetime) -> frozenset[str]:
    """Names of the windows active at `now`. Pure."""
    return frozenset(w.name for w in windows if is_active(w.timing, now))


@dataclass(frozen=True, slots=True)
class AlarmChange:
    """One alarm whose live actionsEnabled differs from its effective value."""

    decision: Decision
    before: bool
    reason: str

    @property
    def action(self) -> AlarmAction:
        return AlarmAction.ENABLE if self.decision.actions_enabled else AlarmAction.DISABLE


@dataclass(frozen=True, slots=True)
class AlarmRules:
    """Every contribution of one desired state: the policies and windows, whatever their kind."""

    policies: tuple[AlarmPolicy, ...]
    windows: tuple[AlarmWindow, ...]

    @property
    def suspended(self) -> frozenset[tuple[Kind, str]]:
        resources: Iterable[AlarmPolicy | AlarmWindow] = (*self.policies, *self.windows)
        return frozenset((r.kind, r.name) for r in resources if r.suspended)

    def selectors(self) -> tuple[AlarmSelector, ...]:
        """Every selector of a resource that is reconciled (not suspended): what observe lists."""
        out = [p.selector for p in self.policies if not p.suspended]
        for window in self.windows:
            if not window.suspended:
                out.extend(window.selectors)
        return tuple(out)

    def decide(self, alarms: Iterable[str], now: datetime) -> dict[AlarmName, Decision]:
        """`effective_state` of these rules at `now`. Pure."""
        return effective_state(alarms, active_window_names(self.windows, now), self.policies, self.windows)

    def reason(self, decision: Decision, now: datetime, since: datetime | None) -> str:
        """The history reason of bringing one alarm to `decision` at `now` (module docstring). Pure.

        `since` is the last instant a previous pass saw (or made) this alarm as it was decided
        then; None when no pass did.
        """
        if decision.rule == Rule.WINDOW_SILENCES:
            return window_started(decision.resource)
        if not decision.actions_enabled:
            return DRIFT
        for window in sorted(self.windows, key=lambda w: w.name):
            ended = last_end(window.timing, now)
            if ended is None or (since is not None and ended <= since):
                continue
            before = self.decide([decision.alarm], ended - JUST_BEFORE).get(decision.alarm)
            after = self.decide([decision.alarm], ended).get(decision.alarm)
            silenced_by_it = before == Decision(
                decision.alarm, False, window.kind, window.name, Rule.WINDOW_SILENCES
            )
            if silenced_by_it and after is not None and after.actions_enabled:
                return window_ended(window.name)
        return DRIFT

    def changes(
        self,
        decisions: Mapping[AlarmName, Decision],
        live: Mapping[str, bool],
        now: datetime,
        settled: Mapping[AlarmName, datetime] | None = None,
    ) -> list[AlarmChange]:
        """Every alarm whose live value differs from its decision (by name), with its reason. Pure.

        `settled`: per alarm, the last instant a pass saw or made it match its decision.
        """
        settled = settled or {}
        out: list[AlarmChange] = []
        for alarm in sorted(decisions):
            decision = decisions[alarm]
            current = live.get(alarm)
            if current is None or current == decision.actions_enabled:
                continue
            out.append(AlarmChange(decision, current, self.reason(decision, now, settled.get(alarm))))
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


def actions_for(changes: Sequence[AlarmChange]) -> tuple[Action, ...]:
    """One Action per changed alarm, named after its deciding resource (target = alarm name). Pure."""
    return tuple(
        Action(
            kind=change.decision.kind,
            name=change.decision.resource,
            action=change.action,
            target=change.decision.alarm,
            before={"actionsEnabled": change.before},
            after={"actionsEnabled": change.decision.actions_enabled},
            reason=change.reason,
            params={"alarmName": change.decision.alarm},
        )
        for change in changes
    )


def sample(names: Sequence[str], limit: int = 10) -> str:
    """A short human list of alarm names for plan notes."""
    shown = ", ".join(names[:limit])
    more = len(names) - limit
    return f"{shown} (+{more} more)" if more > 0 else shown
