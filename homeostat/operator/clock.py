"""The operator's notion of now, and how it writes instants (RFC 3339, UTC, `Z`)."""

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def rfc3339(instant: datetime, timespec: str = "auto") -> str:
    """An aware instant as RFC 3339 in UTC with a `Z` suffix."""
    return instant.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")
