"""How homeostat writes and normalises instants: RFC 3339 in UTC with a `Z`, aware UTC values.

In the lowest layer so that every layer above (reconcilers' reasons and notes, the
operator's output) uses one formatter: `2026-11-18T03:00Z` in snapshot reasons is
`rfc3339(t, "minutes")`, window notes use "seconds". Pure.
"""

from datetime import UTC, datetime


def rfc3339(instant: datetime, timespec: str = "auto") -> str:
    """An aware instant as RFC 3339 in UTC with a `Z` suffix, to `timespec` precision."""
    return instant.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def as_utc(value: datetime) -> datetime:
    """An aware UTC instant; a naive value (as some AWS responses and databases give) is taken as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
