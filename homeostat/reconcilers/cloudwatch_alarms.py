"""CloudWatch alarm I/O shared by the AlarmActions and MaintenanceWindow reconcilers.

Observe side: `list_alarms` reads every alarm the reconciled selectors can
select with as few DescribeAlarms calls as AWS allows: one paged listing per
*minimal* prefix (a prefix that extends another listed prefix is filtered
locally, not listed again), and by-name lookups in batches of 100 only for
names no listed prefix covers. Pages are 100 records (MaxRecords=100) and
NextToken is followed; metric and composite alarms are both asked for.

Fail closed: a query that fails at any page is recorded as failed and none of
its alarms are kept, so no resource whose selectors it covers can enable or
disable anything on the strength of a partial read.

Both alarm kinds need the same listing in a pass (each alarm is attributed to
one resource of either kind by `alarm_state`), so `SHARED_LISTINGS` hands the
listing one kind made to the other kind's observe in the same pass (same
`now`, same selectors, same client) once, instead of listing twice.

Apply side: `apply_alarm_actions` batches Enable/DisableAlarmActions, up to
100 names per call. It decides nothing.
"""

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from homeostat.desired_state.identifiers import AlarmName, Kind
from homeostat.desired_state.models import AlarmSelector, MaintenanceWindow
from homeostat.desired_state.state import DesiredState, Resource
from homeostat.reconcilers.actions import Action, ApplyResult, Measurement
from homeostat.reconcilers.alarm_state import (
    DISABLE,
    ENABLE,
    AlarmManifests,
    Decision,
    actions_for,
    changes_for,
    managed_counts,
)
from homeostat.reconcilers.aws import AWS_ERRORS, AwsClients, chunks, describe_error, pages

PAGE_SIZE = 100
NAMES_PER_CALL = 100
ALARM_TYPES = ["MetricAlarm", "CompositeAlarm"]
ALARMS_MANAGED = "alarms_managed"


@dataclass(frozen=True, slots=True)
class ObservedAlarm:
    name: AlarmName
    actions_enabled: bool
    composite: bool


@dataclass(frozen=True, slots=True)
class AlarmListing:
    """Alarms read for a set of selectors, and the queries that failed (fail closed)."""

    alarms: Mapping[AlarmName, ObservedAlarm]
    prefixes: tuple[str, ...]
    failed_prefixes: Mapping[str, str] = field(default_factory=dict)
    failed_names: Mapping[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.failed_prefixes and not self.failed_names

    def live(self) -> dict[str, bool]:
        return {name: alarm.actions_enabled for name, alarm in self.alarms.items()}

    def covering_prefix(self, name: str) -> str | None:
        return next((p for p in self.prefixes if name.startswith(p)), None)

    def error_for(self, selector: AlarmSelector) -> str | None:
        """Why this selector's alarms are not fully known, or None when they are."""
        if selector.alarmNamePrefix is not None:
            prefix = self.covering_prefix(selector.alarmNamePrefix)
            if prefix is not None and prefix in self.failed_prefixes:
                return f"listing alarms with prefix {prefix!r} failed: {self.failed_prefixes[prefix]}"
            return None
        for name in selector.alarmNames or ():
            prefix = self.covering_prefix(name)
            if prefix is not None and prefix in self.failed_prefixes:
                return f"listing alarms with prefix {prefix!r} failed: {self.failed_prefixes[prefix]}"
            if name in self.failed_names:
                return f"describing alarm {name!r} failed: {self.failed_names[name]}"
        return None

    def missing(self, selector: AlarmSelector) -> list[str]:
        """Names a by-name selector gives that do not exist (known only when their query succeeded)."""
        if selector.alarmNames is None:
            return []
        return [n for n in selector.alarmNames if n not in self.alarms]


@dataclass(frozen=True, slots=True)
class Resolution:
    """The effective state of every listed alarm at one instant, and what it needs."""

    decisions: Mapping[AlarmName, Decision]
    ended: tuple[MaintenanceWindow, ...]
    live: Mapping[str, bool]


@dataclass(frozen=True, slots=True)
class AlarmsObserved:
    """What an alarm resource's diff needs: the pass's listing and every alarm-deciding manifest.

    One value is shared by every resource of a kind in a pass, so the effective state is
    resolved once per instant here rather than once (or twice) per resource's diff.
    """

    listing: AlarmListing
    manifests: AlarmManifests
    _resolved: dict[datetime, Resolution] = field(default_factory=dict, compare=False, repr=False)

    def resolve(self, now: datetime) -> Resolution:
        """`effective_state` of every listed alarm at `now` (memoised per instant). Pure."""
        found = self._resolved.get(now)
        if found is None:
            found = Resolution(
                self.manifests.decide(self.listing.alarms, now),
                self.manifests.recently_ended(now),
                self.listing.live(),
            )
            self._resolved[now] = found
        return found

    def actions(self, kind: Kind, resource: str, now: datetime) -> tuple[Action, ...]:
        """The enable/disable actions of the alarms `resource` is responsible for at `now`. Pure."""
        found = self.resolve(now)
        return actions_for(
            kind, resource, changes_for(kind, resource, found.decisions, found.live, found.ended)
        )


def managed_measurements(observed: AlarmsObserved, now: datetime) -> tuple[Measurement, ...]:
    """`alarms_managed{state}` over every managed alarm of the pass, from a complete listing only. Pure.

    Every alarm plan (of either kind) carries the same pass-wide counts, so the
    gauge is right whichever of them the operator sets last, and stays set
    while any one alarm resource is reconciled (others may be suspended or
    backing off). After a partial listing nothing is reported (fail closed).
    """
    if not observed.listing.complete:
        return ()
    counts = managed_counts(observed.resolve(now).decisions, observed.manifests.suspended)
    return tuple(Measurement(ALARMS_MANAGED, {"state": state}, n) for state, n in counts.items())


def minimal_prefixes(prefixes: Sequence[str]) -> tuple[str, ...]:
    """The prefixes that no other given prefix is a prefix of (sorted). Pure."""
    ordered = sorted(set(prefixes))
    out: list[str] = []
    for prefix in ordered:
        if not any(prefix.startswith(kept) for kept in out):
            out.append(prefix)
    return tuple(out)


def _collect(response: Mapping[str, Any], into: dict[AlarmName, ObservedAlarm]) -> None:
    for key, composite in (("MetricAlarms", False), ("CompositeAlarms", True)):
        for item in response.get(key, []):
            name = AlarmName(str(item["AlarmName"]))
            into[name] = ObservedAlarm(name, bool(item.get("ActionsEnabled", True)), composite)


def _paged(cloudwatch: Any, **query: Any) -> dict[AlarmName, ObservedAlarm]:
    """Every page of one DescribeAlarms query; raises on any failed page."""
    found: dict[AlarmName, ObservedAlarm] = {}
    for response in pages(
        cloudwatch.describe_alarms, "NextToken", **query, AlarmTypes=ALARM_TYPES, MaxRecords=PAGE_SIZE
    ):
        _collect(response, found)
    return found


def list_alarms(selectors: Sequence[AlarmSelector], cloudwatch: Any) -> AlarmListing:
    """Read every alarm the selectors may select (see the module docstring). I/O."""
    prefixes = minimal_prefixes([s.alarmNamePrefix for s in selectors if s.alarmNamePrefix is not None])
    alarms: dict[AlarmName, ObservedAlarm] = {}
    failed_prefixes: dict[str, str] = {}
    failed_names: dict[str, str] = {}
    for prefix in prefixes:
        try:
            alarms.update(_paged(cloudwatch, AlarmNamePrefix=prefix))
        except AWS_ERRORS as exc:
            failed_prefixes[prefix] = describe_error(exc)
    names = sorted(
        {
            name
            for s in selectors
            for name in s.alarmNames or ()
            if not any(name.startswith(p) for p in prefixes)
        }
    )
    for batch in chunks(names, NAMES_PER_CALL):
        try:
            found = _paged(cloudwatch, AlarmNames=batch)
        except AWS_ERRORS as exc:
            failed_names.update(dict.fromkeys(batch, describe_error(exc)))
            continue
        alarms.update({n: a for n, a in found.items() if n in set(batch)})
    return AlarmListing(alarms, prefixes, failed_prefixes, failed_names)


def _selector_key(selector: AlarmSelector) -> tuple[str | None, tuple[str, ...] | None]:
    return (selector.alarmNamePrefix, selector.alarmNames)


@dataclass(slots=True)
class _Shared:
    producer: Kind
    client: Any  # held (not its id) so that a new client can never be mistaken for it
    key: tuple[object, ...]
    listing: AlarmListing


class SharedListings:
    """Hands one pass's listing from the first alarm kind's observe to the other's, once.

    A listing is reused only by a *different* kind, with the same `now`, the
    same client object and the same selectors, and only once: both kinds'
    observe run back to back in one pass before anything is applied, so they
    see the same snapshot of AWS; every other call lists afresh.
    """

    def __init__(self) -> None:
        self._entry: _Shared | None = None
        # The two alarm kinds observe on their own worker threads: the second waits for the
        # first's listing (same service, so it would wait on CloudWatch anyway).
        self._lock = threading.Lock()

    def get(
        self, kind: Kind, selectors: Sequence[AlarmSelector], cloudwatch: Any, now: datetime
    ) -> AlarmListing:
        key = (now, tuple(sorted(map(_selector_key, selectors), key=repr)))
        with self._lock:
            entry = self._entry
            self._entry = None
            if (
                entry is not None
                and entry.producer != kind
                and entry.client is cloudwatch
                and entry.key == key
            ):
                return entry.listing
            listing = list_alarms(selectors, cloudwatch)
            self._entry = _Shared(kind, cloudwatch, key, listing)
            return listing


SHARED_LISTINGS = SharedListings()


def observe_alarms(
    kind: Kind, resources: Sequence[Resource], desired: DesiredState, aws: AwsClients, now: datetime
) -> Mapping[str, object]:
    """The observation both alarm kinds share: one listing of every selector in the desired
    state (handed from the first kind to observe to the second), the same value per resource."""
    manifests = AlarmManifests.of(desired)
    listing = SHARED_LISTINGS.get(kind, manifests.selectors(), aws.client("cloudwatch"), now)
    observed = AlarmsObserved(listing, manifests)
    return {resource.name: observed for resource in resources}


def apply_alarm_actions(actions: Sequence[Action], cloudwatch: Any) -> list[ApplyResult]:
    """Enable/DisableAlarmActions for the actions' targets, up to 100 names per call. I/O.

    One result per action, in the given order; a failed call fails every
    action of its batch with the call's error.
    """
    errors: dict[int, str | None] = {}
    for operation, call in (
        (DISABLE, cloudwatch.disable_alarm_actions),
        (ENABLE, cloudwatch.enable_alarm_actions),
    ):
        indexes = [i for i, a in enumerate(actions) if a.action == operation]
        for batch in chunks(indexes, NAMES_PER_CALL):
            try:
                call(AlarmNames=[actions[i].target for i in batch])
            except AWS_ERRORS as exc:
                message = describe_error(exc)
                errors.update(dict.fromkeys(batch, message))
            else:
                errors.update(dict.fromkeys(batch))
    return [
        ApplyResult(action, errors.get(i, f"unknown action {action.action}"))
        for i, action in enumerate(actions)
    ]
