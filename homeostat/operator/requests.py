"""Pass requests: why a pass is wanted, and the queue in which requests coalesce.

Everything that wants a pass (start-up, the resync timer, the directory
watcher, a reconciler's wake time, a backoff expiring) only *adds a request*;
the loop takes all pending requests at once, so a burst of edits costs one
pass. Reasons are a closed vocabulary, so the loop decides by type, not by
matching text: a `scheduled` pass (window edge, snapshot slot) retries
resources in backoff, since a backoff must never delay re-enabling alarms.
"""

import threading
from dataclasses import dataclass
from enum import StrEnum


class PassReason(StrEnum):
    STARTUP = "startup"
    ONCE = "once"
    RESYNC = "resync"
    CHANGE = "desired state changed"
    SCHEDULED = "scheduled"
    BACKOFF_EXPIRY = "backoff expiry"
    LATE = "a kind finished late"


# Reasons whose pass retries resources in backoff.
BYPASS_BACKOFF = frozenset({PassReason.SCHEDULED})


@dataclass(frozen=True, slots=True)
class PassRequest:
    reason: PassReason
    detail: str = ""  # for the log only (a wake's kind and instant); never decided on


class PassRequests:
    """A coalescing set of pending requests, and the stop flag the loop waits on with them."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._pending: set[PassRequest] = set()
        self._stopping = threading.Event()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def add(self, reason: PassReason, detail: str = "") -> None:
        with self._cond:
            self._pending.add(PassRequest(reason, detail))
            self._cond.notify_all()

    def stop(self) -> bool:
        """Ask the loop to stop; True the first time. Set before anything that could fail."""
        first = not self._stopping.is_set()
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        return first

    def wait_stopping(self, seconds: float) -> bool:
        """Sleep up to `seconds`, waking at once on a stop; True when stopping (a standby's wait)."""
        return self._stopping.wait(seconds)

    def timed_pending(self) -> bool:
        """True while a pass that retries backoffs (a window edge, a snapshot slot) is waiting:
        the running pass stops waiting for slow kinds then (see stragglers.py)."""
        with self._cond:
            return any(r.reason in BYPASS_BACKOFF for r in self._pending)

    def take(self, poll_seconds: float = 1.0) -> list[PassRequest] | None:
        """Block until there are requests (all of them are returned) or a stop (None)."""
        with self._cond:
            while not self._pending and not self._stopping.is_set():
                self._cond.wait(timeout=poll_seconds)
            if self._stopping.is_set():
                return None
            taken = sorted(self._pending, key=lambda r: (r.reason, r.detail))
            self._pending.clear()
            return taken
