"""ActionRecord and the typed events: the one value every sink of the record pipeline receives.

Actions (from a diff), findings (from a diff), revision rejections and unmanaged
resources all become ActionRecords and go through the executor to the same
three sinks: the history row, the `actions_total` counter and the log line.
The record's field list is defined once, by the dataclass below; `history
--json`, the log line, the history row and `plan --json` are all derived from
it and encode values with `json_value`, so a value prints the same way in every
view (JSON true/false/null).
"""

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from homeostat.desired_state.durations import format_duration
from homeostat.desired_state.identifiers import DESIRED_STATE_KIND
from homeostat.desired_state.models import Hold
from homeostat.operator.clock import rfc3339
from homeostat.reconcilers.actions import Action, Finding, Outcome


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """What became of one action or event. `reason` is the plain reason; a conflict that kept
    the action from being applied is its own field, structured in every view."""

    time: datetime
    kind: str
    name: str
    action: str
    target: str
    outcome: Outcome
    before: Mapping[str, Any]
    after: Mapping[str, Any]
    reason: str
    error: str | None
    revision: str
    dry_run: bool
    conflict: str | None = None

    @classmethod
    def of(
        cls,
        action: Action,
        outcome: Outcome,
        *,
        time: datetime,
        revision: str,
        error: str | None = None,
    ) -> "ActionRecord":
        return cls(
            time=time,
            kind=str(action.kind),
            name=action.name,
            action=action.action,
            target=action.target,
            outcome=outcome,
            before=dict(action.before),
            after=dict(action.after),
            reason=action.reason,
            conflict=action.conflict,
            error=error,
            revision=revision,
            dry_run=outcome == Outcome.DRY_RUN,
        )

    def to_json(self) -> dict[str, Any]:
        """The `history --json` object (contract section 5) and the fields of the log line."""
        return {name: json_value(getattr(self, name)) for name in RECORD_FIELDS}


# The one field list: history columns, `history --json` keys and log-line fields.
RECORD_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ActionRecord))
# The record fields an Action already carries (what was decided, before anything happened).
ACTION_FIELDS: tuple[str, ...] = tuple(f for f in RECORD_FIELDS if f in {g.name for g in fields(Action)})


def json_value(value: Any) -> Any:
    """A record value as JSON: instants in RFC 3339 UTC, vocabularies as their strings."""
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, StrEnum):
        return str(value)
    if isinstance(value, Mapping):
        return dict(value)
    return value


def action_view(action: Action) -> dict[str, Any]:
    """The record fields of an action not yet executed (the actions of `plan --json`)."""
    return {name: json_value(getattr(action, name)) for name in ACTION_FIELDS}


@dataclass(frozen=True, slots=True)
class RevisionRejected:
    """A new revision of the directory failed validation; `in_force` stays enforced."""

    directory: str
    rejected: str
    in_force: str | None
    errors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Unmanaged:
    """A manifest was removed: the resource is no longer managed (nothing in AWS changes)."""

    kind: str
    name: str


@dataclass(frozen=True, slots=True)
class Resumed:
    """A bounded hold expired: the resource is reconciled again. Its target is the hold's
    `until`, so the row's identity is the hold's, and a restart does not record it twice."""

    kind: str
    name: str
    hold: Hold


class FightAction(StrEnum):
    """The history actions of a fight (operator/fights.py)."""

    DETECTED = "fight_detected"
    RESOLVED = "fight_resolved"


@dataclass(frozen=True, slots=True)
class Fight:
    """A fight over one field of one target: what homeostat wants, the values it found
    instead (one per correction, and the one that made it stop), and the manifest digest it
    was detected under (a change of the manifest resumes the resource)."""

    target: str
    field: str
    desired: Any
    seen: tuple[Any, ...]
    detected: datetime
    manifest: str


@dataclass(frozen=True, slots=True)
class FightDetected:
    """Something else keeps changing a field back: homeostat stops correcting the resource."""

    kind: str
    name: str
    fight: Fight
    window: timedelta


@dataclass(frozen=True, slots=True)
class FightResolved:
    """A fight ended (`reason`: the manifest changed, or no correction was needed for a window)."""

    kind: str
    name: str
    fight: Fight
    reason: str


# The after key of a fight_detected row beside the field: the manifest digest it was seen under.
FIGHT_MANIFEST = "manifestDigest"
# Everything the executor records that is not an action it applies.
Event = Finding | RevisionRejected | Unmanaged | Resumed | FightDetected | FightResolved


def event_record(event: Event, *, time: datetime, revision: str) -> ActionRecord:
    """The record of one event; `revision` is the one in force (a rejection carries its own)."""
    match event:
        case Finding():
            return ActionRecord(
                time=time,
                kind=str(event.kind),
                name=event.name,
                action=event.action,
                target=event.target,
                outcome=Outcome.FAILED,
                before={},
                after=dict(event.after),
                reason=event.reason,
                error=event.error,
                revision=revision,
                dry_run=False,
            )
        case RevisionRejected():
            return ActionRecord(
                time=time,
                kind=DESIRED_STATE_KIND,
                name="desired-state",
                action="reject_revision",
                target=event.directory,
                outcome=Outcome.FAILED,
                before={"revision": event.in_force},
                after={"revision": event.rejected},
                reason="validation failed; the previous valid revision stays in force",
                error="; ".join(event.errors),
                revision=event.rejected,
                dry_run=False,
            )
        case Unmanaged():
            return ActionRecord(
                time=time,
                kind=event.kind,
                name=event.name,
                action="unmanage",
                target=event.name,
                outcome=Outcome.APPLIED,
                before={"managed": True},
                after={"managed": False},
                reason="manifest removed: no longer managed; nothing in AWS is changed",
                error=None,
                revision=revision,
                dry_run=False,
            )
        case Resumed():
            until = rfc3339(event.hold.until)
            return ActionRecord(
                time=time,
                kind=event.kind,
                name=event.name,
                action="resume",
                target=until,
                outcome=Outcome.APPLIED,
                before={"suspended": True, "until": until},
                after={"suspended": False},
                reason=f"the hold expired: {event.hold.reason}",
                error=None,
                revision=revision,
                dry_run=False,
            )
        case FightDetected() | FightResolved():
            return _fight_record(event, time=time, revision=revision)


def _fight_record(event: FightDetected | FightResolved, *, time: datetime, revision: str) -> ActionRecord:
    """A fight_detected row keeps the values seen in `before` and the desired value and the
    manifest digest in `after` (what a restarted process reads back); it is a conflict, like a
    declared count an autoscaler owns: something else decides the value, nothing is applied."""
    fight = event.fight
    if isinstance(event, FightResolved):
        return ActionRecord(
            time=time,
            kind=event.kind,
            name=event.name,
            action=FightAction.RESOLVED,
            target=fight.target,
            outcome=Outcome.APPLIED,
            before={"fighting": True, "field": fight.field},
            after={"fighting": False},
            reason=f"fight over {fight.field} ended: {event.reason}",
            error=None,
            revision=revision,
            dry_run=False,
        )
    corrections = len(fight.seen) - 1
    return ActionRecord(
        time=time,
        kind=event.kind,
        name=event.name,
        action=FightAction.DETECTED,
        target=fight.target,
        outcome=Outcome.CONFLICT,
        before={fight.field: list(fight.seen)},
        after={fight.field: fight.desired, FIGHT_MANIFEST: fight.manifest},
        reason=f"fight: {fight.field} corrected {corrections} times within {format_duration(event.window)}, "
        "changed back to a value that is not the desired one each time",
        error=None,
        revision=revision,
        dry_run=False,
        conflict=f"something else keeps changing {fight.field} back; corrections stopped until the "
        "manifest changes or a fight window passes with no correction needed",
    )


def recorded_once(event: Event) -> bool:
    """Findings are seen again by every pass's pure diff but recorded once, ever; so is the end
    of a hold, seen by every pass after its `until`."""
    return isinstance(event, Finding | Resumed)
