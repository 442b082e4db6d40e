"""`homeostat run`: the long-running, level-triggered control loop.

The main thread runs passes; everything else only *requests* one: the
resync interval and timed wake-ups (APScheduler), the directory watcher, and
backoff expiry. Requests coalesce, so a burst of edits costs one pass.
SIGTERM/SIGINT let the resource in flight finish and be recorded, then the
process exits 0.
"""

import contextlib
import signal
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from prometheus_client import REGISTRY, CollectorRegistry

from homeostat import __version__
from homeostat.desired_state.loading import DirectoryLoader
from homeostat.desired_state.state import DesiredState, InvalidDesiredState
from homeostat.metrics import Metrics
from homeostat.operator.aws_session import BotoClients
from homeostat.operator.backoff import Backoff
from homeostat.operator.clock import rfc3339, utc_now
from homeostat.operator.execution import Executor, mark_interrupted
from homeostat.operator.history import HistoryError, HistoryStore
from homeostat.operator.http import StatusServer
from homeostat.operator.last_good import LastKnownGood
from homeostat.operator.lease import Lease, LeaseHeld
from homeostat.operator.logs import get_logger
from homeostat.operator.options import Settings
from homeostat.operator.passes import ResourceStatus, State, run_pass
from homeostat.operator.records import RevisionRejected, Unmanaged
from homeostat.operator.status import LoopStatus
from homeostat.operator.watcher import DirectoryWatcher
from homeostat.reconcilers.actions import GaugeSpec
from homeostat.reconcilers.base import AnyReconciler
from homeostat.reconcilers.registry import default_reconcilers, gauges, kind_table

WAKE_PREFIX = "wake-"
# Timed wake-ups further ahead than this are scheduled on a later pass (each pass reschedules).
WAKE_HORIZON = timedelta(days=8)


# The reason of a pass a reconciler asked for (a snapshot slot, a window start or end).
SCHEDULED = "scheduled"


def _no_skip(_resource: Any) -> str | None:
    return None


class DaemonError(Exception):
    """The daemon cannot start; one line for the operator."""


class Daemon:
    def __init__(
        self,
        settings: Settings,
        *,
        registry: CollectorRegistry = REGISTRY,
        reconcilers: Sequence[AnyReconciler] | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.reconcilers = tuple(reconcilers or default_reconcilers())
        self.metrics = Metrics(registry, gauges())
        self.registry = registry
        self.log = get_logger()
        self.status = LoopStatus(resync_seconds=float(settings.resync))
        self.backoff = Backoff()
        self.desired: DesiredState | None = None
        self._cond = threading.Condition(threading.RLock())
        self._requests: set[str] = set()
        self._stopping = False
        self._in_sync_labels: set[tuple[str, str]] = set()
        # Per resource, the per-resource gauge series its plans set (removed with the resource).
        self._measured: dict[tuple[str, str], set[tuple[GaugeSpec, tuple[tuple[str, str], ...]]]] = {}
        self._rejected: str | None = None
        self._loader = DirectoryLoader(
            settings.desired_state, kind_table()
        )  # parses only when the bytes changed
        try:
            self.history = HistoryStore(settings.history)
        except HistoryError as exc:
            raise DaemonError(str(exc)) from exc
        self.lease = Lease(self.history.engine)
        self.aws = BotoClients(settings.region, on_call=self._count_call)
        if self.aws.region is None:
            raise DaemonError("no AWS region: pass --region or set AWS_DEFAULT_REGION")
        self.executor = Executor(self.history, self.metrics, self.log, clock)
        # The last valid revision survives a restart: enforce it until the directory loads.
        self.last_good = LastKnownGood(self.history.engine, self.log)
        self.desired = self.last_good.restore(settings.desired_state)
        if self.desired is not None:
            self.metrics.set_revision(self.desired.revision)
            self.status.revision = self.desired.revision
        self.scheduler = BackgroundScheduler(timezone=UTC)
        self.server: StatusServer | None = None
        self.watcher = DirectoryWatcher(settings.desired_state, self.request_pass, self.log)

    # -- requests -------------------------------------------------------------------------

    def request_pass(self, reason: str) -> None:
        with self._cond:
            self._requests.add(reason)
            self._cond.notify_all()

    def stop(self, reason: str = "stop requested") -> None:
        first = not self._stopping
        self._stopping = True  # before anything that could fail: a stop is never lost
        with self._cond:
            self._cond.notify_all()
        if first:
            self.log.info("shutting_down", reason=reason)

    def _count_call(self, service: str, operation: str, result: str) -> None:
        self.metrics.aws_api_calls_total.labels(service=service, operation=operation, result=result).inc()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Take the single-writer lease and start the endpoints, watcher and scheduler."""
        try:
            self.lease.acquire()
        except LeaseHeld as exc:
            raise DaemonError(str(exc)) from exc
        mark_interrupted(self.history, self.log)  # the lease is ours: no pending row is in flight
        try:
            self.server = StatusServer(self.settings.listen_address, self.registry, self.status)
        except (OSError, OverflowError) as exc:
            self.lease.release()
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise DaemonError(f"cannot listen on {self.settings.listen}: {reason}") from exc
        self.server.start()
        self.metrics.build_info.labels(version=__version__).set(1)
        self.metrics.resync_seconds.set(self.settings.resync)
        self.watcher.start()
        self.scheduler.add_job(
            self.request_pass,
            "interval",
            seconds=self.settings.resync,
            args=["resync"],
            id="resync",
            coalesce=True,
            max_instances=1,
        )
        self.scheduler.start()
        self.log.info(
            "daemon_started",
            version=__version__,
            listen=self.server.url,
            desired_state=str(self.settings.desired_state),
            history=self.history.engine.url.render_as_string(),
            resync=self.settings.resync,
            dry_run=self.settings.dry_run,
        )

    def close(self) -> None:
        self.scheduler.shutdown(wait=False)
        self.watcher.stop()
        if self.server is not None:
            self.server.stop()
        self.lease.release()
        self.history.close()

    def serve(self) -> int:
        """Run passes until stopped. Returns the exit code (0 on a clean shutdown)."""
        self.request_pass("startup")
        while True:
            with self._cond:
                while not self._requests and not self._stopping:
                    self._cond.wait(timeout=1.0)
                if self._stopping:
                    break
                reasons = sorted(self._requests)
                self._requests.clear()
            self.run_one_pass(reasons)
        self.log.info("daemon_stopped")
        return 0

    # -- one pass -------------------------------------------------------------------------

    def _reload(self, now: datetime) -> None:
        """Load the directory; an invalid revision is rejected whole, the last good stays."""
        try:
            files, loaded = self._loader.load()
        except InvalidDesiredState as exc:
            self.metrics.desired_state_loads_total.labels(result="invalid").inc()
            self.metrics.desired_state_valid.set(0)
            rejected = exc.revision or "unreadable"
            errors = tuple(str(e) for e in exc.errors)
            with self.status.lock:
                self.status.valid = False
                self.status.rejected_revision = rejected
                self.status.rejected_errors = errors
            if rejected != self._rejected:
                self._rejected = rejected
                in_force = self.desired.revision if self.desired else None
                self.log.error(
                    "desired_state_rejected", rejected=rejected, in_force=in_force, errors=list(errors)
                )
                event = RevisionRejected(str(self.settings.desired_state), rejected, in_force, errors)
                self.executor.record([event], revision=rejected)
            return
        self.metrics.desired_state_loads_total.labels(result="valid").inc()
        self.metrics.desired_state_valid.set(1)
        self._rejected = None
        previous = self.desired
        if previous is None or previous.revision != loaded.revision:
            self.log.info("desired_state_loaded", revision=loaded.revision, resources=len(loaded.resources))
            self.metrics.set_revision(loaded.revision)
        self.last_good.save(loaded.revision, self.settings.desired_state, files, now)
        self._record_removed(previous, loaded)
        self.desired = loaded
        with self.status.lock:
            self.status.valid = True
            self.status.revision = loaded.revision
            self.status.rejected_revision = None
            self.status.rejected_errors = ()

    def _record_removed(self, previous: DesiredState | None, loaded: DesiredState) -> None:
        keys = {(str(r.kind), r.name) for r in loaded.resources}
        if previous is not None:
            removed = sorted({(str(r.kind), r.name) for r in previous.resources} - keys)
            self.executor.record([Unmanaged(kind, name) for kind, name in removed], revision=loaded.revision)
        self.status.keep_only(keys)
        self.backoff.forget_except(keys)
        for key in set(self._measured) - keys:
            self._forget_measurements(key)
        for kind, name in self._in_sync_labels - keys:
            self.metrics.resource_in_sync.remove(kind, name)
        self._in_sync_labels &= keys

    def _forget_measurements(self, key: tuple[str, str]) -> None:
        for metric, labels in self._measured.pop(key, set()):
            self.metrics.remove_measurement(metric, dict(labels))

    def _skip(self, resource: Any) -> str | None:
        entry = self.backoff.waiting(str(resource.kind), resource.name, self.clock())
        if entry is None:
            return None
        retry = rfc3339(entry.retry_at, timespec="seconds")
        return f"backing off until {retry} after {entry.failures} failure(s): {entry.last_error}"

    def run_one_pass(self, reasons: list[str]) -> None:
        now = self.clock()
        completed = False
        self.status.begin_pass()
        statuses: list[ResourceStatus] = []
        try:
            self._reload(now)
            if self.desired is not None:
                log = self.log.bind(revision=self.desired.revision)
                log.info("pass_started", reasons=reasons)
                report = run_pass(
                    self.desired,
                    self.reconcilers,
                    self.aws,
                    self.executor,
                    clock=self.clock,
                    dry_run=self.settings.dry_run,
                    metrics=self.metrics,
                    # A pass at a window edge or snapshot slot retries every resource, backing off
                    # or not: a backoff must never delay re-enabling alarms after maintenance.
                    skip=_no_skip if any(r.startswith(SCHEDULED) for r in reasons) else self._skip,
                    should_stop=lambda: self._stopping,
                )
                statuses = self._after_pass(report.statuses, now)
                log.info(
                    "pass_finished",
                    resources=len(report.statuses),
                    actions=len(report.records),
                    errors=len(report.errors),
                    drifted=len(report.drifted),
                )
        except Exception as exc:
            self.log.exception("pass_failed", error=str(exc))
        else:
            completed = True
        finally:
            self.status.end_pass(self.clock(), statuses, completed=completed)
            if completed:
                self.metrics.last_pass_timestamp_seconds.set(self.clock().timestamp())
            self._reschedule()

    def _after_pass(self, statuses: list[ResourceStatus], now: datetime) -> list[ResourceStatus]:
        kept: list[ResourceStatus] = []
        for status in statuses:
            if status.state == State.ERROR:
                # Counted from now, the end of the pass, not its start: a slow pass must not
                # leave the retry instant already in the past.
                entry = self.backoff.failed(status.kind, status.name, self.clock(), status.message)
                self.log.warning(
                    "resource_backoff",
                    kind=status.kind,
                    name=status.name,
                    failures=entry.failures,
                    retry_at=entry.retry_at.isoformat(),
                    error=status.message,
                )
            elif status.state not in {State.BACKING_OFF, State.NOT_REACHED, State.SUSPENDED}:
                self.backoff.succeeded(status.kind, status.name)
            if status.state == State.NOT_REACHED:
                continue
            key = (status.kind, status.name)
            if status.state == State.SUSPENDED:
                self._forget_measurements(key)  # not reconciled: its last values would go stale
            elif status.plan is not None:
                self._measured.setdefault(key, set()).update(
                    (m.metric, tuple(sorted(m.labels.items())))
                    for m in status.plan.measurements
                    if "name" in m.labels  # per-resource series only; alarms_managed is global
                )
            if status.state not in {State.BACKING_OFF}:
                self._in_sync_labels.add((status.kind, status.name))
            kept.append(status)
        return kept

    def _reschedule(self) -> None:
        """Replace the timed wake-ups: reconciler instants (slots, window edges) and backoff expiry.

        Never raises: a failure here must not end the loop (the resync keeps it going).
        """
        if self._stopping:
            return
        try:
            self._replace_wake_jobs()
        except Exception as exc:  # noqa: BLE001 - see the docstring
            self.log.error("reschedule_failed", error=str(exc))

    def _replace_wake_jobs(self) -> None:
        now = self.clock()
        instants: dict[datetime, str] = {}
        for retry in self.backoff.retry_times():
            if retry <= now:
                self.request_pass("backoff expiry")  # due already: retry at once
            else:
                instants[retry] = "backoff expiry"
        if self.desired is not None:
            for reconciler in self.reconcilers:
                try:
                    for instant in reconciler.wake_times(self.desired, now):
                        if instant.tzinfo is None:
                            raise ValueError(f"naive wake time {instant.isoformat()}")
                        instants[instant] = f"{SCHEDULED} {reconciler.kinds[0]} {instant.isoformat()}"
                except Exception as exc:  # noqa: BLE001 - a bad wake time must not stop the loop
                    self.log.warning("wake_times_failed", kind=str(reconciler.kinds[0]), error=str(exc))
        for job in self.scheduler.get_jobs():
            if job.id.startswith(WAKE_PREFIX):
                with contextlib.suppress(JobLookupError):  # it fired (and went) meanwhile
                    self.scheduler.remove_job(job.id)
        for instant in sorted(i for i in instants if now < i <= now + WAKE_HORIZON):
            self.scheduler.add_job(
                self.request_pass,
                "date",
                run_date=instant,
                args=[instants[instant]],
                id=f"{WAKE_PREFIX}{instant.timestamp()}",
                misfire_grace_time=None,
                coalesce=True,
                replace_existing=True,
            )


def run_daemon(settings: Settings) -> int:
    """Start, serve until SIGTERM/SIGINT, clean up. Raises DaemonError when it cannot start."""
    early: list[str] = []  # a signal before the daemon exists: stop as soon as it does
    holder: list[Daemon] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if holder:
            holder[0].stop(name)
        else:
            early.append(name)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        daemon = Daemon(settings)
        holder.append(daemon)
        if early:
            daemon.history.close()
            return 0
        daemon.start()
        try:
            if early:
                daemon.stop(early[0])
            return daemon.serve()
        finally:
            daemon.close()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
