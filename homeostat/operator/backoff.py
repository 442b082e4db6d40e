"""Per-resource exponential backoff with jitter, from 1 s to 5 min, reset on success.

Loop state, not reconciler state: a failing resource is skipped until its
retry instant while the others are reconciled on time.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

BASE_SECONDS = 1.0
CAP_SECONDS = 300.0


def backoff_delay(failures: int, jitter: float) -> float:
    """Delay after the n-th consecutive failure; `jitter` in [0, 1]. Pure.

    Equal jitter: half the exponential step is fixed, half random, so retries
    of many resources spread out but never come sooner than half the step.
    """
    step = min(CAP_SECONDS, BASE_SECONDS * 2 ** max(failures - 1, 0))
    return float(max(BASE_SECONDS, min(CAP_SECONDS, step / 2 + step / 2 * jitter)))


@dataclass(frozen=True, slots=True)
class BackoffEntry:
    failures: int
    retry_at: datetime
    last_error: str


class Backoff:
    def __init__(self, jitter: Callable[[], float] = random.random) -> None:
        self._entries: dict[tuple[str, str], BackoffEntry] = {}
        self._jitter = jitter

    def failed(self, kind: str, name: str, now: datetime, error: str) -> BackoffEntry:
        previous = self._entries.get((kind, name))
        failures = (previous.failures if previous else 0) + 1
        delay = backoff_delay(failures, self._jitter())
        entry = BackoffEntry(failures, now + timedelta(seconds=delay), error)
        self._entries[(kind, name)] = entry
        return entry

    def succeeded(self, kind: str, name: str) -> None:
        self._entries.pop((kind, name), None)

    def waiting(self, kind: str, name: str, now: datetime) -> BackoffEntry | None:
        """The entry when the resource must still wait at `now`, else None."""
        entry = self._entries.get((kind, name))
        return entry if entry is not None and now < entry.retry_at else None

    def retry_times(self) -> set[datetime]:
        return {e.retry_at for e in self._entries.values()}

    def forget_except(self, keep: set[tuple[str, str]]) -> None:
        for key in set(self._entries) - keep:
            del self._entries[key]
