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

croniter is imported by the functions that use it: the kinds' models import
this module, and a desired state without a window or schedule (and `schema`)
should not pay for it (about 13 ms: its import also runs `file` on the
interpreter, through `platform.architecture()`).
"""

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, WithJsonSchema

_FIELDS = 5
# Farther than any DST offset change, so that stepping from here never skips a fire.
_SLACK = timedelta(hours=3)


_DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
# crontab(5) syntax only: numbers (names in month and day-of-week), `*`, lists, ranges, steps.
# croniter also accepts R (random), L, W, # and ?, which standard cron does not.
_NUMERIC_FIELD = re.compile(r"^(\*|[0-9]+(-[0-9]+)?)(/[0-9]+)?(,(\*|[0-9]+(-[0-9]+)?)(/[0-9]+)?)*$")
_NAMED_ITEM = r"(\*|([0-9]+|[A-Za-z]{3})(-([0-9]+|[A-Za-z]{3}))?)(/[0-9]+)?"
_NAMED_FIELD = re.compile(rf"^{_NAMED_ITEM}(,{_NAMED_ITEM})*$")


def _check_names(field: str, names: tuple[str, ...], what: str, expression: str) -> None:
    for word in re.findall(r"[A-Za-z]+", field):
        if word.upper() not in names:
            raise ValueError(
                f"invalid cron {expression!r}: {word!r} is not a {what} name ({', '.join(names)})"
            )


def _day_of_week_values(field: str) -> list[int]:
    """Expand a valid day-of-week field to days 0-6 (Sunday = 0 and 7), as crontab(5) does."""
    days: set[int] = set()
    for item in field.upper().split(","):
        body, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if body == "*":
            low, high = 0, 7
        else:
            start, _, end = body.partition("-")
            low = _DAY_NAMES.index(start) if start.isalpha() else int(start)
            high = (_DAY_NAMES.index(end) if end.isalpha() else int(end)) if end else low
            if end and end.isalpha() and high == 0 and low > 0:
                high = 7  # FRI-SUN: Sunday as 7 ends the range
        if not (0 <= low <= 7 and 0 <= high <= 7) or low > high or step < 1:
            raise ValueError(f"day-of-week {item!r} out of range (0-7, 0 and 7 = Sunday)")
        days.update(day % 7 for day in range(low, high + 1, step))
    return sorted(days)


@lru_cache(maxsize=256)
def _compiled(expression: str) -> tuple[str, bool]:
    """The expression croniter evaluates, and croniter's `day_or` flag, per crontab(5):

    day-of-week is expanded to 0-6 (croniter mishandles ranges that end at 7), and
    day-of-month and day-of-week combine with OR only when neither starts with `*`
    (Vixie cron and cronie), else with AND.
    """
    minute, hour, dom, month, dow = expression.split(" ")
    days = _day_of_week_values(dow)
    dow_text = "*" if dow == "*" else ",".join(str(d) for d in days)
    day_or = not (dom.startswith("*") or dow.startswith("*"))
    return " ".join((minute, hour, dom, month, dow_text)), day_or


def _cursor(expression: str, start: datetime) -> Any:
    from croniter import croniter

    text, day_or = _compiled(expression)
    return croniter(text, start, day_or=day_or)


def validate_cron(expression: str) -> str:
    """Return the expression if it is a valid 5-field cron that fires; else raise ValueError."""
    text = " ".join(expression.split())
    fields = text.split(" ")
    if len(fields) != _FIELDS:
        raise ValueError(
            f"invalid cron {expression!r}: need 5 fields (minute hour day-of-month month day-of-week)"
        )
    minute, hour, dom, month, dow = fields
    if not all(_NUMERIC_FIELD.match(f) for f in (minute, hour, dom)) or not all(
        _NAMED_FIELD.match(f) for f in (month, dow)
    ):
        raise ValueError(
            f"invalid cron {expression!r}: use crontab(5) syntax only (numbers, month and weekday names, "
            "*, lists, ranges and /steps)"
        )
    _check_names(month, _MONTH_NAMES, "month", expression)
    _check_names(dow, _DAY_NAMES, "day-of-week", expression)
    try:
        _day_of_week_values(dow)
    except ValueError as exc:
        raise ValueError(f"invalid cron {expression!r}: {exc}") from None
    from croniter import CroniterBadCronError, CroniterBadDateError, croniter

    if not croniter.is_valid(text):
        raise ValueError(
            f"invalid cron {expression!r}: fields out of range "
            "(minute 0-59, hour 0-23, day 1-31, month 1-12, day-of-week 0-7 with 0 and 7 = Sunday)"
        )
    try:
        _cursor(text, datetime(2000, 1, 1)).get_next(datetime)  # noqa: DTZ001 - wall time
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
    cursor = _cursor(expression, _local(after, zone) - _SLACK)
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
    cursor = _cursor(expression, _local(at_or_before, zone) + _SLACK + timedelta(minutes=1))
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
