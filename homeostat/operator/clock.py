"""The operator's notion of now, and how it writes instants and durations.

One formatter per form, for the whole operator: instants as RFC 3339 in UTC
with a `Z` (logs, history, status, JSON), the time of day for the demo's
narration, and elapsed seconds for people (status, `run --once`).
"""

from datetime import UTC, datetime

from homeostat.desired_state.instants import rfc3339

__all__ = ["rfc3339", "seconds_text", "time_of_day", "utc_now"]  # rfc3339: the one formatter, re-exported


def utc_now() -> datetime:
    return datetime.now(UTC)


def time_of_day(instant: datetime) -> str:
    """HH:MM:SS in UTC, for lines a person reads as they happen."""
    return rfc3339(instant, timespec="seconds")[11:19]


def seconds_text(seconds: float, digits: int = 1) -> str:
    """An elapsed time in seconds for people: `12.3s`."""
    return f"{seconds:.{digits}f}s"
