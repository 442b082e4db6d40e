"""Standard 5-field cron evaluated in an IANA time zone. Pure functions.

Weekdays follow crontab(5): 0 and 7 are Sunday, names SUN-SAT and JAN-DEC are
accepted. croniter parses and steps through *local wall-clock* times (naive
datetimes, so its own DST handling never applies); this module maps each wall
time to an instant:

- a wall time that does not exist (DST gap) starts at the first valid instant
  after the gap, i.e. the transition itself;
- a wall time that occurs twice (DST fall-back) fires once, at its first
  occurrence.

APScheduler never sees a cron expression: it only receives concrete instants
computed here (its CronTrigger numbers weekdays from Monday).
"""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import CroniterBadCronError, CroniterBadDateError, croniter
from pydantic import AfterValidator, WithJsonSchema

_FIELDS = 5
# Farther than any DST offset change, so that stepping from here never skips a fire.
_SLACK = timedelta(hours=3)


def validate_cron(expression: str) -> str:
    """Return the expression if it is a valid 5-field cron that fires; else raise ValueError."""
    text = " ".join(expression.split())
    if len(text.split(" ")) != _FIELDS:
        raise ValueError(
            f"invalid cron {expression!r}: need 5 fields (minute hour day-of-month month day-of-week)"
        )
    if not croniter.is_valid(text):
        raise ValueError(
            f"invalid cron {expression!r}: fields out of range "
            "(minute 0-59, hour 0-23, day 1-31, month 1-12, day-of-week 0-7 with 0 and 7 = Sunday)"
        )
    try:
        croniter(text, datetime(2000, 1, 1)).get_next(datetime)  # noqa: DTZ001 - wall time
    except (CroniterBadDateError, CroniterBadCronError) as exc:
        raise ValueError(f"invalid cron {expression!r}: it never fires") from exc
    return text


def validate_time_zone(name: str) -> str:
    """Return the name if it is an IANA time zone; else raise ValueError."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as UTC or Europe/Berlin"
        ) from exc
    return name


CronExpression = Annotated[
    str,
    AfterValidator(validate_cron),
    WithJsonSchema(
        {
            "type": "string",
            "description": "5-field cron; 0 and 7 = Sunday",
            "examples": ["0 2 * * SUN"],
        }
    ),
]
TimeZoneName = Annotated[
    str,
    AfterValidator(validate_time_zone),
    WithJsonSchema({"type": "string", "examples": ["UTC", "Europe/Berlin"]}),
]


def known_time_zones() -> frozenset[str]:
    """IANA names available here (for the JSON Schema's documentation only)."""
    return frozenset(available_timezones())


def wall_to_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """Map a naive local wall time to a UTC instant (gap: transition; repeat: first)."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # The wall time falls in a gap: find the first instant whose local time is past it.
    low = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    high = first
    if low > high:
        low, high = high, low
    while high - low > timedelta(seconds=1):
        mid = low + (high - low) / 2
        if mid.astimezone(zone).replace(tzinfo=None) >= wall:
            high = mid
        else:
            low = mid
    return high.replace(microsecond=0)


def _local(instant: datetime, zone: ZoneInfo) -> datetime:
    if instant.tzinfo is None:
        raise ValueError("instants must be timezone-aware")
    return instant.astimezone(zone).replace(tzinfo=None)


def iter_fires(expression: str, time_zone: str, after: datetime) -> Iterator[datetime]:
    """Yield fire instants (UTC) strictly after `after`, in order. Pure."""
    zone = ZoneInfo(time_zone)
    cursor = croniter(expression, _local(after, zone) - _SLACK)
    last: datetime | None = None
    while True:
        wall = cursor.get_next(datetime)
        instant = wall_to_instant(wall, zone)
        if instant <= after or (last is not None and instant <= last):
            continue
        last = instant
        yield instant


def next_fire(expression: str, time_zone: str, after: datetime) -> datetime:
    """The first fire instant strictly after `after`. Pure."""
    return next(iter_fires(expression, time_zone, after))


def previous_fire(expression: str, time_zone: str, at_or_before: datetime) -> datetime:
    """The last fire instant at or before `at_or_before`. Pure."""
    zone = ZoneInfo(time_zone)
    cursor = croniter(expression, _local(at_or_before, zone) + _SLACK + timedelta(minutes=1))
    while True:
        wall = cursor.get_prev(datetime)
        instant = wall_to_instant(wall, zone)
        if instant <= at_or_before:
            return instant


def fires_between(
    expression: str, time_zone: str, start_exclusive: datetime, end_inclusive: datetime
) -> list[datetime]:
    """Every fire instant in (start, end]. Pure."""
    out: list[datetime] = []
    for instant in iter_fires(expression, time_zone, start_exclusive):
        if instant > end_inclusive:
            break
        out.append(instant)
    return out
