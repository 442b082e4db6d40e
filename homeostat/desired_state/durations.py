"""Duration strings such as `90s`, `30m`, `4h`, `7d` (real elapsed time)."""

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_PATTERN = re.compile(r"^([1-9][0-9]{0,8})([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
DURATION_REGEX = _PATTERN.pattern
MAX_SECONDS = 3650 * 86400


def parse_duration(text: object) -> timedelta:
    """Parse a duration string; raise ValueError naming the accepted forms."""
    if isinstance(text, timedelta):
        return text
    if not isinstance(text, str):
        raise ValueError("must be a duration string such as 90s, 30m, 4h or 7d")
    match = _PATTERN.match(text)
    if match is None:
        raise ValueError(f"invalid duration {text!r}: use a positive whole number and s, m, h, d or w")
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds > MAX_SECONDS:
        raise ValueError(f"duration {text!r} is longer than 10 years")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest exact string for a duration, the inverse of parse_duration."""
    seconds = int(value.total_seconds())
    for unit in ("w", "d", "h", "m"):
        size = _UNIT_SECONDS[unit]
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": DURATION_REGEX, "examples": ["90s", "30m", "4h", "7d"]}),
]
