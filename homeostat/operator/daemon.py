"""`homeostat run` (and `demo`): the loop plus what only a long-running process has.

The main thread runs passes; everything else only *requests* one: the
resync interval and timed wake-ups (wakes.py), the directory watcher, and
backoff expiry. The daemon adds to the loop the single-writer lease, the
HTTP endpoints, the watcher and the scheduler, and the signal handling:
SIGTERM/SIGINT stop between AWS reads or after the action in flight is
recorded, then the process exits 0. A `run` that finds the lease held
waits as a hot standby (standby.py) with its endpoints up, and leads once
the lease is free. `run --once` is `run_once` below: the same loop, one
pass, no endpoints, and it still refuses to run beside a live daemon.
"""

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from homeostat import __version__
from homeostat.desired_state.loading import DirectoryLoader
from homeostat.operator.execution import mark_interrupted
from homeostat.operator.history import HistoryQuery
from homeostat.operator.http import StatusServer
from homeostat.operator.lease import LeaseHeld
from homeostat.operator.loop import Loop
from homeostat.operator.requests import PassReason, PassRequest
from homeostat.operator.standby import Role, keep_lease, try_lease, wait_for_lease
from homeostat.operator.statuses import PassReport
from homeostat.operator.wakes import WakeScheduler
from homeostat.operator.watcher import DirectoryWatcher
from homeostat.operator.wiring import Runtime, StartupError


def take_lease(runtime: Runtime) -> None:
    """The single-writer lease now, or StartupError; then `took_lease`."""
    if runtime.lease is None or runtime.history is None:
        return
    try:
        runtime.lease.acquire()
    except LeaseHeld as exc:
        raise StartupError(str(exc)) from exc
    took_lease(runtime)


def took_lease(runtime: Runtime) -> None:
    """Leftover journal rows of a killed writer become `interrupted`: the lease is ours, so
    no pending row is in flight."""
    if runtime.history is not None:
        mark_interrupted(runtime.history, runtime.log)


class Daemon:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.wakes = WakeScheduler(runtime.requests, runtime.settings.resync)
        self.loop = Loop(runtime, self.wakes)
        self.server: StatusServer | None = None
        self.lease_watch: threading.Thread | None = None
        self.lease_lost = False
        self.watcher = DirectoryWatcher(
            self.settings.desired_state, lambda: runtime.requests.add(PassReason.CHANGE), runtime.log
        )

    def start(self) -> bool:
        """Start the endpoints, take the single-writer lease (as a standby, waiting for it while
        another daemon holds it), then start the watcher and scheduler. False when stopped
        while still a standby: it never led, and `serve` has nothing to do."""
        url = self._listen()
        if self._lead() == Role.STOPPED:
            return False
        self.runtime.reporter.started(self.settings.resync)
        self.watcher.start()
        self.wakes.start()
        self.runtime.log.info(
            "daemon_started",
            version=__version__,
            listen=url,
            desired_state=str(self.settings.desired_state),
            # render_as_string hides a password in the URL: credentials never reach the log.
            history=self.runtime.history.engine.url.render_as_string() if self.runtime.history else None,
            resync=self.settings.resync,
            dry_run=self.settings.dry_run,
            selector=self.settings.selector.text or None,
        )
        return True

    def _lead(self) -> Role:
        """The lease, at once or after a standby wait. A standby runs no pass and writes
        nothing; on taking over it marks the dead leader's journal rows and restores the
        last known good the leader saved meanwhile, then leads like any daemon."""
        lease, status = self.runtime.lease, self.loop.status
        if lease is None:
            self.runtime.reporter.leading(True)
            return Role.LEADER

        def on_standby() -> None:
            status.set_standby(True)
            self.runtime.reporter.leading(False)

        try:
            role = wait_for_lease(
                lambda: try_lease(lease, self.runtime.log),
                self.runtime.requests.wait_stopping,
                time.monotonic,
                self.runtime.log,
                on_standby=on_standby,
            )
        except LeaseHeld as exc:  # this database cannot hold a lease at all
            raise StartupError(str(exc)) from exc
        if role == Role.STOPPED:
            return role
        took_lease(self.runtime)
        if status.standby:
            self.loop.reloader.restore()
            status.set_standby(False)
        self.runtime.reporter.leading(True)
        self.lease_watch = threading.Thread(
            target=keep_lease,
            args=(lease.still_held, self.runtime.requests.wait_stopping, self.runtime.log),
            kwargs={"on_lost": self._on_lease_lost},
            name="lease",
            daemon=True,
        )
        self.lease_watch.start()
        return role

    def _on_lease_lost(self) -> None:
        self.lease_lost = True
        self.runtime.reporter.leading(False)
        self.loop.stop("the single-writer lease was lost")

    def _listen(self) -> str:
        """Start the endpoints (before the lease: a standby answers its probes); their URL."""
        try:
            self.server = StatusServer(
                self.settings.listen_address, self.runtime.registry, self.loop.status, self.history_rows
            )
        except (OSError, OverflowError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise StartupError(f"cannot listen on {self.settings.listen}: {reason}") from exc
        self.server.start()
        return self.server.url

    def history_rows(self, limit: int) -> list[dict[str, Any]]:
        """The page's newest history rows, newest first. A database that fails to answer leaves
        the page without them (logged), rather than without the rest of what it shows."""
        if self.runtime.history is None:
            return []
        try:
            # The rows of this daemon's shard: the page shows what this daemon manages.
            records = self.runtime.history.query(HistoryQuery(limit=limit, shard=self.runtime.history.shard))
        except SQLAlchemyError as exc:
            self.runtime.log.warning("page_history_failed", error=str(exc).splitlines()[0])
            return []
        return [record.to_json() for record in reversed(records)]

    def serve(self) -> int:
        self.runtime.requests.add(PassReason.STARTUP)
        return self.loop.serve()

    def close(self) -> None:
        self.runtime.requests.stop()  # ends the lease watch, which uses the lease's connection
        if self.lease_watch is not None:
            self.lease_watch.join()
        self.wakes.stop()
        self.watcher.stop()
        if self.server is not None:
            self.server.stop()
        if self.runtime.lease is not None:
            self.runtime.lease.release()
        self.runtime.close()


def run_daemon(
    build: Callable[[], Runtime],
    *,
    on_started: Callable[[Daemon], None] | None = None,
    stop_after: float | None = None,
) -> int:
    """Build the runtime, start, serve until SIGTERM/SIGINT (or `stop_after` seconds), clean up.

    Returns 0 on a clean stop; raises StartupError when it cannot start. The
    signal handlers come first, so a signal while the runtime is being built
    (migrations, last known good) still ends in a clean exit 0. `on_started`
    runs once the endpoints answer (the demo introduces itself there).
    """
    early: list[str] = []
    holder: list[Daemon] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if holder:
            holder[0].loop.stop(name)
        else:
            early.append(name)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        runtime = build()
        daemon = Daemon(runtime)
        holder.append(daemon)
        if early:
            runtime.close()
            return 0
        try:
            if not daemon.start():
                return 0  # stopped while a standby
            if on_started is not None:
                on_started(daemon)
            if stop_after is not None:
                timer = threading.Timer(stop_after, daemon.loop.stop, args=["--duration elapsed"])
                timer.daemon = True
                timer.start()
            code = daemon.serve()
            if daemon.lease_lost:
                raise StartupError(
                    "the single-writer lease was lost (its database session ended); stopped so that "
                    "only one daemon acts: restart to stand by or lead"
                )
            return code
        finally:
            daemon.close()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@dataclass(frozen=True, slots=True)
class OnceResult:
    """What `run --once` did: its pass (None when it failed part-way), and the signal that
    stopped it, if one did."""

    report: PassReport | None
    signal: signal.Signals | None


def run_once(runtime: Runtime, loader: DirectoryLoader | None = None) -> OnceResult:
    """`run --once`: the lease, then one pass of the loop.

    SIGINT/SIGTERM stop it the way they stop the daemon (the action in flight is finished and
    recorded, observes end at the next AWS read, kinds' workers wind down), so Ctrl-C neither
    waits for a whole pass nor leaves a half-done action unrecorded.
    """
    received: list[signal.Signals] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signal.Signals(signum))
        runtime.requests.stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        take_lease(runtime)
        try:
            report = Loop(runtime, loader=loader).run_one_pass([PassRequest(PassReason.ONCE)])
        finally:
            if runtime.lease is not None:
                runtime.lease.release()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        runtime.close()
    return OnceResult(report, received[0] if received else None)
