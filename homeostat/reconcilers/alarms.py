"""The one alarm reconciler: every Enable/DisableAlarmActions call, for every alarm kind.

Kinds contribute alarm rules through their descriptors (`alarm_rules`): AlarmActions a
policy, MaintenanceWindow a window. Per pass this reconciler lists every selected alarm
once (`cloudwatch_alarms.list_alarms`: one paged DescribeAlarms per minimal prefix,
names in batches of 100), resolves the effective state of every alarm once by the pure
rules of `alarm_state`, and plans for each contributing resource the changes of the
alarms it decides (rows name the deciding resource). A MaintenanceWindow's own plan
(timing notes, its gauge, wake times) comes from its kind module and is merged with
this one by the pass loop.

It remembers one thing across passes (and, within a pass, its one resolution): per
region and alarm, the last pass that saw it (or made it)
match its effective state, so that an alarm found disabled after a window's end, when a
pass since that end already had it on, is `drift`, not "maintenance window X ended"; a
re-enable that failed and is retried still names the window. A new process (restart,
`run --once`) knows no earlier pass, and re-enables what a window left disabled as that
window ended.
"""

import threading
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from homeostat.desired_state.identifiers import AlarmName, Kind
from homeostat.desired_state.state import DesiredState, Resource
from homeostat.desired_state.validation import Bond
from homeostat.desired_state.windows import is_active
from homeostat.reconcilers.actions import Action, ApplyResult, GaugeSpec, Measurement, ObserveError, Plan
from homeostat.reconcilers.alarm_state import (
    AlarmAction,
    AlarmPolicy,
    AlarmRules,
    AlarmWindow,
    Contribute,
    Decision,
    Rule,
    actions_for,
    managed_counts,
    sample,
)
from homeostat.reconcilers.aws import AwsClients, client_region
from homeostat.reconcilers.base import Stages
from homeostat.reconcilers.cloudwatch_alarms import (
    AlarmListing,
    alarm_batches,
    apply_alarm_actions,
    list_alarms,
)

ALARMS_MANAGED = GaugeSpec(
    "alarms_managed", "Managed alarms by effective actions state (enabled|disabled).", ("state",)
)
ALARM_PERMISSIONS: Mapping[StrEnum, tuple[str, ...]] = {
    AlarmAction.DISABLE: ("cloudwatch:DisableAlarmActions",),
    AlarmAction.ENABLE: ("cloudwatch:EnableAlarmActions",),
}
ALARM_OBSERVATIONS = ("cloudwatch:DescribeAlarms",)
# Both hold a value (an alarm's ActionsEnabled) that something else can keep changing back.
ALARM_CORRECTIONS: tuple[StrEnum, ...] = (AlarmAction.DISABLE, AlarmAction.ENABLE)


@dataclass(frozen=True, slots=True)
class AlarmsObserved:
    """One pass's alarm view, the same value for every resource: the listing, every
    contribution, and the effective state resolved once at the pass's instant."""

    listing: AlarmListing
    rules: AlarmRules
    at: datetime
    decisions: Mapping[AlarmName, Decision]
    actions: tuple[Action, ...]
    settled: Mapping[AlarmName, datetime]
    region: str | None = None  # the region listed (alarm names are unique per region only)

    @classmethod
    def resolve(
        cls,
        listing: AlarmListing,
        rules: AlarmRules,
        now: datetime,
        settled: Mapping[AlarmName, datetime] | None = None,
        region: str | None = None,
    ) -> "AlarmsObserved":
        """The effective state of every listed alarm at `now`, and every change it needs. Pure."""
        settled = dict(settled or {})
        decisions = rules.decide(listing.alarms, now)
        changes = rules.changes(decisions, listing.live(), now, settled)
        return cls(listing, rules, now, decisions, actions_for(changes), settled, region)

    def at_instant(self, now: datetime) -> "AlarmsObserved":
        """The same observation resolved at another instant (the pass decides after observing)."""
        if now == self.at:
            return self
        return AlarmsObserved.resolve(self.listing, self.rules, now, self.settled, self.region)

    def matching(self) -> list[AlarmName]:
        """The listed alarms that already match their effective state."""
        live = self.listing.live()
        return [a for a, d in self.decisions.items() if live.get(a) == d.actions_enabled]

    def actions_of(self, kind: Kind, name: str) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.kind == kind and a.name == name)

    def measurements(self) -> tuple[Measurement, ...]:
        """`alarms_managed{state}` over every managed alarm, from a complete listing only.

        Every alarm plan carries the same pass-wide counts, so the gauge is right whichever
        of them the operator sets last. After a partial listing nothing is reported.
        """
        if not self.listing.complete:
            return ()
        counts = managed_counts(self.decisions, self.rules.suspended)
        return tuple(Measurement(ALARMS_MANAGED, {"state": state}, n) for state, n in counts.items())


class AlarmReconciler:
    """Plans for the resources of every kind that contributes alarm rules."""

    def __init__(self, contributors: Mapping[Kind, Contribute]) -> None:
        self._contributors = dict(contributors)
        # Per region and alarm, the last pass instant it was seen or made as decided (see the
        # docstring). Keyed by the region of the clients: the pass observes each region on its
        # own (and concurrently), with only that region's resources.
        self._settled: dict[str | None, dict[AlarmName, datetime]] = {}
        # Per region, the pass's observation resolved at the instant the pass decides at: its
        # resources' diffs share one resolution (the pass observes, then reads the clock, then diffs).
        self._decided: dict[str | None, AlarmsObserved] = {}
        self._lock = threading.Lock()  # guards the two dicts (regions are observed concurrently)

    @property
    def kinds(self) -> tuple[Kind, ...]:
        return tuple(self._contributors)

    def rules_of(self, desired: DesiredState, now: datetime) -> AlarmRules:
        """Every contribution of the desired state at `now` (suspended resources included). Pure."""
        found = [
            self._contributors[r.kind](r, now) for r in desired.resources if r.kind in self._contributors
        ]
        return AlarmRules(
            tuple(c for c in found if isinstance(c, AlarmPolicy)),
            tuple(c for c in found if isinstance(c, AlarmWindow)),
        )

    def observe(
        self, resources: Sequence[Resource[Any]], desired: DesiredState, aws: AwsClients, now: datetime
    ) -> Mapping[str, AlarmsObserved | ObserveError]:
        rules = self.rules_of(desired, now)
        cloudwatch = aws.client("cloudwatch")
        region = client_region(cloudwatch)
        listing = list_alarms(rules.selectors(), cloudwatch)
        with self._lock:
            settled = self._settled.get(region, {})
            observed = AlarmsObserved.resolve(listing, rules, now, settled, region)
            if listing.complete:  # forget alarms no longer listed; keep all after a partial listing
                settled = {a: t for a, t in settled.items() if a in listing.alarms}
            self._settled[region] = {**settled, **dict.fromkeys(observed.matching(), now)}
            self._decided.pop(region, None)
        return {resource.name: observed for resource in resources}

    def diff(self, resource: Resource[Any], observed: AlarmsObserved | ObserveError, now: datetime) -> Plan:
        kind, name = resource.kind, resource.name
        if isinstance(observed, ObserveError):
            return Plan(kind, name, error=observed.message)
        observed = self._resolved(observed, now)
        contribution = self._contributors[kind](resource, now)
        if isinstance(contribution, AlarmPolicy):
            return _policy_plan(contribution, observed)
        return _window_plan(contribution, observed, now)

    def _resolved(self, observed: AlarmsObserved, now: datetime) -> AlarmsObserved:
        """`observed` at `now`, resolved once for all the pass's diffs at that instant."""
        with self._lock:
            decided = self._decided.get(observed.region)
        if decided is None or decided.listing is not observed.listing or decided.at != now:
            decided = observed.at_instant(now)
            with self._lock:
                self._decided[observed.region] = decided
        return decided

    def stages(self, actions: Sequence[Action]) -> Stages:
        """One stage: each Enable/DisableAlarmActions batch (up to 100 names) is a unit."""
        return [alarm_batches(actions)]

    def apply(self, actions: Sequence[Action], aws: AwsClients) -> list[ApplyResult]:
        cloudwatch = aws.client("cloudwatch")
        region = client_region(cloudwatch)
        results = apply_alarm_actions(actions, cloudwatch)
        with self._lock:
            decided = self._decided.get(region)
            if decided is not None:  # made as decided, at the instant the pass decided
                done = (AlarmName(r.action.target) for r in results if r.error is None)
                self._settled.setdefault(region, {}).update(dict.fromkeys(done, decided.at))
        return results

    def wake_times(self, desired: DesiredState, now: datetime) -> list[datetime]:
        # Window edges change which alarms are silenced; the window kind asks for those passes.
        return []


def _policy_plan(policy: AlarmPolicy, observed: AlarmsObserved) -> Plan:
    """An AlarmActions' plan: its alarms' changes; a named alarm that does not exist is its error."""
    listing = observed.listing
    failure = listing.error_for(policy.selector)
    if failure is not None:
        return Plan(policy.kind, policy.name, error=f"{failure}; nothing changed (fail closed)")
    selected = [alarm for alarm in listing.alarms if policy.selector.selects(alarm)]
    decisions = observed.decisions
    silenced = [a for a in selected if a in decisions and decisions[a].rule == Rule.WINDOW_SILENCES]
    enabled = str(policy.actions_enabled).lower()
    notes = [f"selects {len(selected)} alarm(s), actionsEnabled {enabled}"]
    if silenced:
        windows = sorted({decisions[a].resource for a in silenced})
        notes.append(f"{len(silenced)} of them silenced now by maintenance window(s) {', '.join(windows)}")
    missing = listing.missing(policy.selector)
    return Plan(
        policy.kind,
        policy.name,
        actions=observed.actions_of(policy.kind, policy.name),
        error=f"alarm(s) not found: {', '.join(missing)}" if missing else None,
        notes=tuple(notes),
        measurements=observed.measurements(),
        facts=in_alarm_facts(listing, selected),
    )


def in_alarm_facts(listing: AlarmListing, selected: Sequence[AlarmName]) -> dict[str, Any]:
    """The Plan facts of an alarm plan (see Plan): its selected alarms whose state is ALARM."""
    return {"alarmsInAlarm": sorted(a for a in selected if listing.alarms[a].state == "ALARM")}


def _window_plan(window: AlarmWindow, observed: AlarmsObserved, now: datetime) -> Plan:
    """A window's alarm plan: what it silences (or would), and the changes it decides."""
    listing = observed.listing
    failures = [e for e in map(listing.error_for, window.selectors) if e is not None]
    if failures:
        return Plan(window.kind, window.name, error=f"{failures[0]}; nothing changed (fail closed)")
    selected = sorted(a for a in listing.alarms if window.selects(a))
    verb = "silences" if is_active(window.timing, now) else "would silence"
    notes = [f"{verb} {len(selected)} alarm(s)" + (f": {sample(selected)}" if selected else "")]
    missing = sorted({a for s in window.selectors for a in listing.missing(s)})
    if missing:
        notes.append(f"alarm(s) not found: {', '.join(missing)}")
    return Plan(
        window.kind,
        window.name,
        actions=observed.actions_of(window.kind, window.name),
        notes=tuple(notes),
        measurements=observed.measurements(),
        facts=in_alarm_facts(listing, selected),
    )


# Any instant will do for the bond: a contribution's selectors do not depend on it.
_ANY_INSTANT = datetime(2000, 1, 1, tzinfo=UTC)


def alarm_bond(contributors: Mapping[Kind, Contribute]) -> Bond:
    """The shard bond of alarm rules: two contributing resources (policies, windows) that can
    select one alarm are decided together (rules 1-3 weigh every window and policy of an alarm;
    split over two daemons, one would silence what the other re-enables). Alarm names are per
    region; validation does not know the daemon's default region, so a resource without
    `spec.region` is taken to share every region (never a missed pair, at worst a cautious one)."""

    def bond(resources: Sequence[Resource[Any]]) -> Iterator[tuple[Resource[Any], Resource[Any], str]]:
        by_region: dict[str | None, list[Resource[Any]]] = defaultdict(list)
        for resource in resources:
            if resource.kind in contributors:
                by_region[resource.manifest.spec.region].append(resource)
        unplaced = by_region.pop(None, [])
        for members in by_region.values() or [[]]:
            yield from _overlapping(contributors, [*members, *unplaced])

    return bond


def _overlapping(
    contributors: Mapping[Kind, Contribute], resources: Sequence[Resource[Any]]
) -> Iterator[tuple[Resource[Any], Resource[Any], str]]:
    """Pairs of contributing resources whose selectors can select one alarm name."""
    names: dict[str, list[Resource[Any]]] = defaultdict(list)
    prefixes: dict[str, list[Resource[Any]]] = defaultdict(list)
    atoms: list[tuple[Resource[Any], str, bool]] = []  # (resource, text, is a prefix)
    for resource in resources:
        found = contributors[resource.kind](resource, _ANY_INSTANT)
        for selector in (found.selector,) if isinstance(found, AlarmPolicy) else found.selectors:
            if selector.alarmNamePrefix is not None:
                prefixes[selector.alarmNamePrefix].append(resource)
                atoms.append((resource, selector.alarmNamePrefix, True))
            for name in selector.alarmNames or ():
                names[name].append(resource)
                atoms.append((resource, name, False))
    why = "both can select the same alarms"
    # Two selectors overlap when one prefix starts the other's text, or two names are equal:
    # each atom looks up its own leading parts, so the longer side finds every overlap.
    for resource, text, is_prefix in atoms:
        others = [] if is_prefix else list(names[text])
        for end in range(1, len(text) + 1):
            others.extend(prefixes.get(text[:end], ()))
        yield from ((resource, other, why) for other in others if other is not resource)
