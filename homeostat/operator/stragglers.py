"""Kind workers that outlive the pass that started them, so that a slow kind never delays a window edge.

Each kind (or group of reconcilers sharing kinds) runs on its own worker. A pass normally waits for
all of them. But when a timed pass is due (a maintenance window starts or ends, a snapshot slot
comes) while one kind is still held by AWS retries, the daemon does not wait: the pass ends, the
slow worker goes on here, and the timed pass starts at once with every other kind. A kind that is
still running is not started again; its statuses are reported by the first pass that finds it
finished (`harvest`). `run --once` and `plan` never leave stragglers: they wait for every kind.

Owned by the daemon's loop, one per process; thread-safe (passes run on the loop thread, workers
finish on theirs).
"""

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, wait
from typing import Any

from homeostat.desired_state.identifiers import Kind

GroupKey = tuple[Kind, ...]


class Stragglers:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[GroupKey, Future[Any]] = {}

    def running(self, key: GroupKey) -> "Future[Any] | None":
        """The worker of `key` still running from an earlier pass, if any."""
        with self._lock:
            future = self._running.get(key)
            return future if future is not None and not future.done() else None

    def keep(self, key: GroupKey, future: "Future[Any]") -> None:
        with self._lock:
            self._running[key] = future

    def harvest(self) -> list[tuple[GroupKey, "Future[Any]"]]:
        """The stragglers that have finished since (their results belong to the next report)."""
        with self._lock:
            done = [(key, future) for key, future in self._running.items() if future.done()]
            for key, _ in done:
                del self._running[key]
            return done

    def when_done(self, callback: Callable[[], None]) -> None:
        """Call `callback` as each straggler finishes (at once for one already done): the loop
        asks for a pass then, so the kinds a pass skipped are reconciled again without waiting
        for the next resync."""
        with self._lock:
            futures = list(self._running.values())
        for future in futures:
            future.add_done_callback(lambda _done: callback())

    def keys(self) -> Sequence[GroupKey]:
        with self._lock:
            return [key for key, future in self._running.items() if not future.done()]

    def wait_all(self, timeout: float | None = None) -> None:
        """Let every straggler finish (at shutdown: their actions are recorded before the
        history closes)."""
        with self._lock:
            futures = list(self._running.values())
        wait(futures, timeout=timeout)
