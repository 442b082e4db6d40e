"""Fights: something else keeps changing a target back, and homeostat stops correcting it.

Contract section 2.1. A correction is an applied (not dry-run, not failed) action of the
correcting vocabulary below whose reason is drift: a maintenance window silencing or
re-enabling alarms (reason `maintenance window ... started/ended`) is planned change, never
a fight. A field is one key of a correction's `after` on one target (`desiredCount` of a
service, `minCapacity` of a scalable target, `serverlessV2Scaling.maxCapacity` of a
cluster, `actionsEnabled` of an alarm). When a pass plans a correction of a field that
homeostat already corrected to the same value `threshold` times within the window (each
later correction, and this plan, is the proof it was changed back), the resource is
Fighting: its actions are withheld, one `fight_detected` row records the values seen.

The memory is the history database: the corrections counted are rows, and the newest
`fight_detected`/`fight_resolved` row of a resource says whether it is fighting, so a
restart neither forgets nor repeats a fight. Only corrections newer than that row count,
so a resumed resource needs a whole new series of reverts to fight again. A fight
resumes when the resource's manifest digest differs from the one the row recorded, or
once the last pass that needed a correction of the fought field is a whole window old.
That last instant is process memory (a needed correction is withheld, so no row says so);
a restarted process counts its first pass as needing one, so it resumes late, never early.

`judge` decides, purely; `FightWatch` reads the history (two queries per kind per pass
at most) and keeps that instant. `plan` has no history and cannot know fights.
"""

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from homeostat.desired_state.durations import format_duration
from homeostat.desired_state.identifiers import Kind
from homeostat.desired_state.state import Resource
from homeostat.operator.history import HistoryStore
from homeostat.operator.records import (
    FIGHT_MANIFEST,
    ActionRecord,
    Fight,
    FightAction,
    FightDetected,
    FightResolved,
)
from homeostat.operator.values import value_text
from homeostat.reconcilers.actions import Action, Outcome
from homeostat.reconcilers.alarm_state import DRIFT
from homeostat.reconcilers.registry import corrections
from homeostat.reconcilers.task_definitions import digest_of

# The actions that hold a value (each kind declares its `corrections`): what can be fought over.
CORRECTIONS = corrections()
DEFAULT_THRESHOLD = 3
DEFAULT_WINDOW = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class FightRule:
    """--fight-threshold corrections within --fight-window make a fight."""

    threshold: int = DEFAULT_THRESHOLD
    window: timedelta = DEFAULT_WINDOW

    def message(self, fight: Fight) -> str:
        """The status message of a Fighting resource: the field, the values seen, how to resume."""
        seen = ", ".join(value_text(v) for v in fight.seen)
        return (
            f"Fighting: {fight.field} of {fight.target} was corrected {len(fight.seen) - 1} times and "
            f"changed back each time (values seen {seen}; desired {value_text(fight.desired)}); "
            "not corrected until its manifest "
            f"changes or {format_duration(self.window)} passes with no correction needed"
        )


@dataclass(frozen=True, slots=True)
class Judgement:
    """One resource's verdict for a pass: the fight in force (None: reconcile as usual), the
    events to record, and the instant the fought field last needed a correction."""

    fight: Fight | None = None
    events: tuple[FightDetected | FightResolved, ...] = ()
    needed_at: datetime | None = None


def is_drift(reason: str) -> bool:
    """Whether an action's reason is drift (not a window's start or end, not a deployment)."""
    return reason == DRIFT or reason.startswith(f"{DRIFT}:")


def is_correction(record: ActionRecord) -> bool:
    """An applied correction of drift (see the module docstring)."""
    return (
        record.action in CORRECTIONS
        and record.outcome == Outcome.APPLIED
        and not record.dry_run
        and is_drift(record.reason)
    )


def corrected_fields(action: Action) -> dict[tuple[str, str], Any]:
    """(target, field) -> desired value of each field a planned action corrects of drift."""
    if str(action.action) not in CORRECTIONS or action.conflict is not None or not is_drift(action.reason):
        return {}
    return {
        (action.target, key): value
        for key, value in action.after.items()
        if key in action.before and action.before[key] != value
    }


def fight_of(row: ActionRecord | None) -> Fight | None:
    """The fight a `fight_detected` row records; None for a `fight_resolved` row or none."""
    if row is None or row.action != FightAction.DETECTED:
        return None
    field = next(iter(row.before))
    desired = row.after.get(field)
    return Fight(row.target, field, desired, tuple(row.before[field]), row.time, row.after[FIGHT_MANIFEST])


def _detected(
    rule: FightRule,
    planned: Sequence[Action],
    corrections: Sequence[ActionRecord],
    now: datetime,
    resolved: datetime | None,
    digest: str,
) -> Fight | None:
    """The first planned field corrected `threshold` times to the same value within the window
    and not before the last fight ended (`resolved`: a correction of that very pass counts)."""
    counted = (
        r
        for r in corrections
        if is_correction(r) and now - rule.window < r.time <= now and (resolved is None or r.time >= resolved)
    )
    ordered = sorted(counted, key=lambda r: r.time)
    for action in planned:
        for (target, field), desired in corrected_fields(action).items():
            seen = [
                row.before[field]
                for row in ordered
                if row.target == target
                and field in row.before
                and row.after.get(field) == desired
                and row.before[field] != desired
            ]
            if len(seen) >= rule.threshold:
                return Fight(target, field, desired, (*seen, action.before[field]), now, digest)
    return None


def judge(
    rule: FightRule,
    resource: tuple[str, str],
    planned: Sequence[Action],
    corrections: Sequence[ActionRecord],
    last_event: ActionRecord | None,
    digest: str,
    now: datetime,
    needed_at: datetime | None,
) -> Judgement:
    """Pure: whether one resource (kind, name) is Fighting at `now`.

    `corrections`: its history rows (any; only corrections count); `last_event`: its newest
    fight_detected or fight_resolved row; `digest`: its manifest's digest now; `needed_at`:
    the last pass this process saw the fought field needing a correction (None: unknown,
    so this pass counts as one)."""
    kind, name = resource
    fight = fight_of(last_event)
    if fight is not None:
        if fight.manifest != digest:
            return Judgement(events=(FightResolved(kind, name, fight, "the manifest changed"),))
        needed = any((fight.target, fight.field) in corrected_fields(a) for a in planned)
        last = now if needed or needed_at is None else max(needed_at, fight.detected)
        if now - last >= rule.window:
            quiet = f"no correction was needed for {format_duration(rule.window)}"
            return Judgement(events=(FightResolved(kind, name, fight, quiet),))
        return Judgement(fight=fight, needed_at=last)
    resolved = last_event.time if last_event is not None else None
    found = _detected(rule, planned, corrections, now, resolved, digest)
    if found is None:
        return Judgement()
    return Judgement(fight=found, events=(FightDetected(kind, name, found, rule.window),), needed_at=now)


def manifest_digest(resource: Resource[Any]) -> str:
    """The digest of one resource's manifest (its canonical model dump): a change resumes it."""
    return digest_of(resource.manifest.model_dump(mode="json"))


class FightWatch:
    """The history side of `judge`, shared by every kind's worker of the daemon's passes: per
    kind and pass, one query for the newest fight rows, and one for the corrections within
    the window when a resource not fighting plans one."""

    def __init__(self, history: HistoryStore, rule: FightRule) -> None:
        self.history = history
        self.rule = rule
        self._lock = threading.Lock()
        self._needed: dict[tuple[str, str], datetime] = {}  # fights in force: their last needed pass

    def judge_kind(
        self, kind: Kind, planned: Sequence[tuple[Resource[Any], Sequence[Action]]], now: datetime
    ) -> dict[str, Judgement]:
        """The judgement of each resource of one kind planned in this pass, by name."""
        if not planned:
            return {}
        events = self.history.newest_of(str(kind), [str(a) for a in FightAction])
        counting = any(
            corrected_fields(a)
            for resource, actions in planned
            if fight_of(events.get(resource.name)) is None
            for a in actions
        )
        rows: Mapping[str, Sequence[ActionRecord]] = {}
        if counting:
            rows = self.history.corrections(str(kind), now - self.rule.window, sorted(CORRECTIONS))
        out: dict[str, Judgement] = {}
        with self._lock:
            for resource, actions in planned:
                key = (str(kind), resource.name)
                fighting = fight_of(events.get(resource.name)) is not None
                if not fighting and not any(corrected_fields(a) for a in actions):
                    # Not fighting and correcting nothing: judge's answer is no fight, known
                    # without its inputs (an in-sync pass hashes no manifest).
                    self._needed.pop(key, None)
                    out[resource.name] = Judgement()
                    continue
                verdict = judge(
                    self.rule,
                    key,
                    actions,
                    rows.get(resource.name, ()),
                    events.get(resource.name),
                    manifest_digest(resource),
                    now,
                    self._needed.get(key),
                )
                if verdict.needed_at is None:
                    self._needed.pop(key, None)
                else:
                    self._needed[key] = verdict.needed_at
                out[resource.name] = verdict
        return out

    def judge_all(
        self, planned: Sequence[tuple[Resource[Any], Sequence[Action]]], now: datetime
    ) -> dict[tuple[Kind, str], Judgement]:
        """The judgement of every resource of a pass's group (one or more kinds), by key."""
        by_kind: dict[Kind, list[tuple[Resource[Any], Sequence[Action]]]] = {}
        for resource, actions in planned:
            by_kind.setdefault(resource.kind, []).append((resource, actions))
        return {
            (kind, name): verdict
            for kind, mine in by_kind.items()
            for name, verdict in self.judge_kind(kind, mine, now).items()
        }
