"""What the daemon knows about itself: readiness, liveness, per-resource status.

Shared between the loop thread (writer) and the HTTP threads (readers).
"""

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from homeostat.desired_state.identifiers import Kind
from homeostat.operator.clock import rfc3339, seconds_text
from homeostat.operator.overview import overview
from homeostat.operator.statuses import ResourceStatus


def _iso(value: datetime | None) -> str | None:
    return rfc3339(value) if value is not None else None


@dataclass
class LoopStatus:
    resync_seconds: float
    started_monotonic: float = field(default_factory=time.monotonic)
    pass_started: float | None = None
    pass_finished: float | None = None
    in_pass: bool = False
    passes: int = 0
    revision: str | None = None
    valid: bool = False
    rejected_revision: str | None = None
    rejected_errors: tuple[str, ...] = ()
    last_pass_time: datetime | None = None
    resources: dict[tuple[Kind, str], ResourceStatus] = field(default_factory=dict)
    standby: bool = False  # waiting for the lease another daemon holds (standby.py)
    selector: str = ""  # the canonical `--selector` text of this daemon's shard ("" for all)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def begin_pass(self) -> None:
        with self.lock:
            self.in_pass = True
            self.pass_started = time.monotonic()

    def end_pass(self, when: datetime, statuses: list[ResourceStatus], *, completed: bool = True) -> None:
        """A pass that failed part-way ends, but is not progress: liveness keeps counting
        from the last completed pass, so a loop whose every pass fails turns unhealthy."""
        with self.lock:
            self.in_pass = False
            if not completed:
                return
            self.pass_finished = time.monotonic()
            self.passes += 1
            self.last_pass_time = when
            for status in statuses:
                self.resources[(status.kind, status.name)] = status

    def set_standby(self, standby: bool) -> None:
        """Leaving standby restarts the liveness clock: the wait was no pass, and no failure."""
        with self.lock:
            self.standby = standby
            if not standby:
                self.started_monotonic = time.monotonic()

    def keep_only(self, keys: set[tuple[Kind, str]]) -> None:
        with self.lock:
            for key in set(self.resources) - keys:
                del self.resources[key]

    def healthy(self, now_monotonic: float | None = None) -> tuple[bool, str]:
        """Progress within 3 resync periods: a pass finished, or one running started.

        Before the first pass, the process start counts as the last progress.
        """
        now = time.monotonic() if now_monotonic is None else now_monotonic
        limit = 3 * self.resync_seconds
        with self.lock:
            if self.standby:
                return True, "standby: waiting for the lease another daemon holds"
            if self.in_pass and self.pass_started is not None:
                age = now - self.pass_started
                return age <= limit, f"pass running for {seconds_text(age)} (limit {seconds_text(limit, 0)})"
            last = self.pass_finished if self.pass_finished is not None else self.started_monotonic
            age = now - last
            what = "last pass finished" if self.pass_finished is not None else "started, no pass yet"
            return age <= limit, f"{what} {seconds_text(age)} ago (limit {seconds_text(limit, 0)})"

    def ready(self) -> tuple[bool, str]:
        with self.lock:
            if self.standby:
                return False, "standby"
            if not self.valid and self.revision is None:
                return False, "no valid desired state loaded"
            if self.passes == 0:
                return False, "first pass not done"
            if self.rejected_revision is not None:
                return True, f"ready; revision {self.rejected_revision} rejected, {self.revision} in force"
            return True, f"ready; revision {self.revision}"

    def to_json(self) -> dict[str, Any]:
        with self.lock:
            resources = sorted(self.resources.values(), key=lambda s: (s.kind, s.name))
            return {
                "revision": self.revision,
                "selector": self.selector or None,
                "valid": self.valid,
                "rejectedRevision": self.rejected_revision,
                "rejectedErrors": list(self.rejected_errors),
                "passes": self.passes,
                "lastPass": _iso(self.last_pass_time),
                "inPass": self.in_pass,
                "resources": [r.to_json() for r in resources],
                **overview(resources),
            }
