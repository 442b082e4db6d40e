"""Maintenance window timing. Pure functions of a window spec and an injected instant.

Called by the MaintenanceWindow kind (notes, gauge, `wake_times`) and the alarm
rules (is a window active now? when did it last end?). A window is given as any
`Timing` (the MaintenanceWindow spec is one), so this layer needs no kind model.
Nothing here reads a clock or touches AWS.

A window is a set of occurrences, each the half-open interval
`[start, start + duration)` of real (UTC) time:

- recurring: one occurrence per cron fire of `schedule` in `timeZone`, with
  the DST rules of `homeostat.desired_state.cron` (a start in a DST gap begins
  at the first valid instant after it; a repeated wall time starts once, at
  its first occurrence); `duration` is elapsed time, so a 4h window that
  spans a DST change still lasts 4 real hours;
- one-off: the single occurrence `[start, end)`.

The window is *active* at `t` when any occurrence contains `t`. Occurrences
that overlap or touch (a window longer than its period, or a fire exactly at
the previous end) merge: the window then stays active across them, and its
"end" is the end of the merged run. `edges` reports the edges of that merged
activity: the next instant the window switches on, and the next instant it
switches off.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from homeostat.desired_state.cron import next_fire, previous_fire

# How far ahead to look for an end of a window that keeps being re-triggered
# (e.g. `* * * * *` lasting 2h is always active): beyond this, "no end".
HORIZON = timedelta(days=400)
# ... and at most this many merged occurrences (each step costs one cron evaluation).
MAX_MERGED = 1000


class Timing(Protocol):
    """When a window is active: a recurring schedule and duration, or one-off start and end."""

    @property
    def schedule(self) -> str | None: ...
    @property
    def duration(self) -> timedelta | None: ...
    @property
    def timeZone(self) -> str: ...  # noqa: N802 - the manifest's field name
    @property
    def one_off(self) -> tuple[datetime, datetime] | None: ...


@dataclass(frozen=True, slots=True)
class Edges:
    """What a window does next after an instant: active now, and when it next starts/ends.

    `next_start` is None when the window never switches on again (a one-off
    window already begun, or one that never ends within the horizon);
    `next_end` is None when it never switches off within the horizon.
    """

    active: bool
    next_start: datetime | None
    next_end: datetime | None


def _require_aware(t: datetime) -> None:
    if t.tzinfo is None:
        raise ValueError("instants must be timezone-aware")


def _latest_start(spec: Timing, at_or_before: datetime) -> datetime | None:
    """The last occurrence start at or before the instant. Pure."""
    one_off = spec.one_off
    if one_off is not None:
        return one_off[0] if one_off[0] <= at_or_before else None
    assert spec.schedule is not None
    return previous_fire(spec.schedule, spec.timeZone, at_or_before)


def _duration(spec: Timing) -> timedelta:
    one_off = spec.one_off
    if one_off is not None:
        return one_off[1] - one_off[0]
    assert spec.duration is not None
    return spec.duration


def is_active(spec: Timing, t: datetime) -> bool:
    """True when some occurrence of the window contains `t` (start inclusive, end exclusive). Pure.

    All occurrences of a window last equally long, so the latest start at or
    before `t` has the latest end: checking it alone is enough.
    """
    _require_aware(t)
    start = _latest_start(spec, t)
    return start is not None and t < start + _duration(spec)


def _run_end(spec: Timing, start: datetime, limit: datetime) -> datetime | None:
    """End of the merged run of occurrences beginning with the one that starts at `start`.

    Each step jumps to the last occurrence starting at or before the current
    end (an occurrence starting exactly at an end continues the run). None
    when the run lasts past `limit` or merges more than MAX_MERGED occurrences.
    """
    duration = _duration(spec)
    end = start + duration
    for _ in range(MAX_MERGED):
        if end > limit:
            return None
        latest = _latest_start(spec, end)
        if latest is None or latest + duration <= end:
            return end
        end = latest + duration
    return None


def _next_occurrence_start(spec: Timing, after: datetime) -> datetime | None:
    """The first occurrence start strictly after `after`. Pure."""
    one_off = spec.one_off
    if one_off is not None:
        return one_off[0] if one_off[0] > after else None
    assert spec.schedule is not None
    return next_fire(spec.schedule, spec.timeZone, after)


def edges(spec: Timing, now: datetime) -> Edges:
    """Whether the window is active at `now`, and its next switch-on and switch-off after `now`. Pure.

    Invariants (checked by property tests): when active, it stays active on
    `[now, next_end)` and `next_end < next_start`; when inactive, it stays
    inactive on `[now, next_start)` and `next_start < next_end`.
    """
    _require_aware(now)
    limit = now + HORIZON
    duration = _duration(spec)
    latest = _latest_start(spec, now)
    if latest is not None and now < latest + duration:
        end = _run_end(spec, latest, limit)
        start = None if end is None else _next_occurrence_start(spec, end)
        return Edges(True, start, end)
    start = _next_occurrence_start(spec, now)
    if start is None or start > limit:
        return Edges(False, None, None)
    return Edges(False, start, _run_end(spec, start, start + HORIZON))


def current_start(spec: Timing, now: datetime) -> datetime | None:
    """The start of the occurrence active at `now`, or None while inactive. Pure."""
    _require_aware(now)
    latest = _latest_start(spec, now)
    return latest if latest is not None and now < latest + _duration(spec) else None


def last_end(spec: Timing, now: datetime) -> datetime | None:
    """The latest instant at or before `now` at which the window switched off; None while active. Pure.

    The latest occurrence start at or before `now` has the latest end, so when
    the window is inactive its last switch-off is simply that occurrence's end.
    """
    _require_aware(now)
    start = _latest_start(spec, now)
    if start is None:
        return None
    end = start + _duration(spec)
    return end if end <= now else None


def wake_instants(spec: Timing, now: datetime) -> list[datetime]:
    """The window's next switch-on and switch-off instants after `now` (the daemon wakes at them). Pure."""
    found = edges(spec, now)
    return sorted(t for t in (found.next_start, found.next_end) if t is not None and t > now)
