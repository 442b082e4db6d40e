"""CloudWatch alarm I/O of the one alarm reconciler (`alarms.py`): listing and batched apply.

Observe side: `list_alarms` reads every alarm the reconciled selectors can
select with as few DescribeAlarms calls as AWS allows: one paged listing per
*minimal* prefix (a prefix that extends another listed prefix is filtered
locally, not listed again), and by-name lookups in batches of 100 only for
names no listed prefix covers. Pages are 100 records (MaxRecords=100) and
NextToken is followed; metric and composite alarms are both asked for.

Fail closed: a query that fails at any page is recorded as failed and none of
its alarms are kept, so no resource whose selectors it covers can enable or
disable anything on the strength of a partial read.

Apply side: `apply_alarm_actions` batches Enable/DisableAlarmActions, up to
100 names per call. It decides nothing.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from homeostat.desired_state.identifiers import AlarmName
from homeostat.desired_state.models import AlarmSelector
from homeostat.reconcilers.actions import Action, ApplyResult
from homeostat.reconcilers.alarm_state import AlarmAction
from homeostat.reconcilers.aws import aws_errors, chunks, describe_error, pages

PAGE_SIZE = 100
NAMES_PER_CALL = 100
ALARM_TYPES = ["MetricAlarm", "CompositeAlarm"]


@dataclass(frozen=True, slots=True)
class ObservedAlarm:
    name: AlarmName
    actions_enabled: bool
    composite: bool
    state: str | None = None  # StateValue (OK, ALARM, INSUFFICIENT_DATA): the health check's alarms in ALARM


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
            state = str(item["StateValue"]) if item.get("StateValue") else None
            into[name] = ObservedAlarm(name, bool(item.get("ActionsEnabled", True)), composite, state)


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
        except aws_errors() as exc:
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
        except aws_errors() as exc:
            failed_names.update(dict.fromkeys(batch, describe_error(exc)))
            continue
        alarms.update({n: a for n, a in found.items() if n in set(batch)})
    return AlarmListing(alarms, prefixes, failed_prefixes, failed_names)


def alarm_batches(actions: Sequence[Action]) -> list[list[Action]]:
    """The actions as the calls that send them: per operation, up to 100 names per call.
    Pure; the batches are independent of each other, so they may be sent concurrently."""
    return [
        batch
        for operation in (AlarmAction.DISABLE, AlarmAction.ENABLE)
        for batch in chunks([a for a in actions if a.action == operation], NAMES_PER_CALL)
    ]


def apply_alarm_actions(actions: Sequence[Action], cloudwatch: Any) -> list[ApplyResult]:
    """Enable/DisableAlarmActions for the actions' targets, up to 100 names per call. I/O.

    One result per action, in the given order; a failed call fails every
    action of its batch with the call's error.
    """
    errors: dict[int, str | None] = {}
    for operation, call in (
        (AlarmAction.DISABLE, cloudwatch.disable_alarm_actions),
        (AlarmAction.ENABLE, cloudwatch.enable_alarm_actions),
    ):
        indexes = [i for i, a in enumerate(actions) if a.action == operation]
        for batch in chunks(indexes, NAMES_PER_CALL):
            try:
                call(AlarmNames=[actions[i].target for i in batch])
            except aws_errors() as exc:
                message = describe_error(exc)
                errors.update(dict.fromkeys(batch, message))
            else:
                errors.update(dict.fromkeys(batch))
    return [
        ApplyResult(action, errors.get(i, f"unknown action {action.action}"))
        for i, action in enumerate(actions)
    ]
