"""The loop: one pass at a time, from coalesced requests, on the shared runtime.

A pass reloads the desired state (reload.py), reconciles every resource not
in backoff (passes.run_pass), keeps the per-resource backoff, hands the
report to the Reporter and the status, and replaces the timed wake-ups.
`run` calls `serve`; `run --once` calls `run_one_pass` once; both are this
loop on the same wiring, so `run --once` restores and saves the last known
good and records `unmanage` rows exactly as the daemon does.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from homeostat.desired_state.loading import DirectoryLoader
from homeostat.desired_state.state import DesiredState, Resource
from homeostat.operator import overlaps
from homeostat.operator.backoff import Backoff
from homeostat.operator.clock import rfc3339
from homeostat.operator.passes import run_pass
from homeostat.operator.reload import Reloader
from homeostat.operator.requests import BYPASS_BACKOFF, PassReason, PassRequest
from homeostat.operator.status import LoopStatus
from homeostat.operator.statuses import PassReport, ResourceStatus, State
from homeostat.operator.stragglers import Stragglers
from homeostat.operator.wakes import WakeScheduler, wake_requests
from homeostat.operator.wiring import Runtime, StartupError

# States after which a resource's backoff is left as it is (it was not reconciled).
UNRECONCILED = frozenset({State.BACKING_OFF, State.NOT_REACHED, State.SUSPENDED})


class Loop:
    def __init__(
        self, runtime: Runtime, wakes: WakeScheduler | None = None, loader: DirectoryLoader | None = None
    ) -> None:
        self.runtime = runtime
        self.log = runtime.log
        self.clock = runtime.clock
        self.requests = runtime.requests
        self.status = LoopStatus(
            resync_seconds=float(runtime.settings.resync), selector=runtime.settings.selector.text
        )
        self.backoff = Backoff()
        self.wakes = wakes
        self.reloader = Reloader(
            runtime.settings.desired_state,
            runtime.executor,
            runtime.last_good,
            runtime.reporter,
            self.status,
            runtime.log,
            runtime.settings.selector,
            loader,
        )
        self.reloader.restore()
        self.stragglers = Stragglers()
        self.overlapped: dict[overlaps.Key, overlaps.ShardActed] = {}  # by another shard (overlaps.py)

    def stop(self, reason: str = "stop requested") -> None:
        if self.requests.stop():
            self.log.info("shutting_down", reason=reason)

    def serve(self) -> int:
        """Run passes until stopped; 0 on a clean shutdown.

        Raises StartupError when the first pass finds no valid revision at all
        (none loadable and no last known good): there is nothing to enforce.
        """
        first = True
        while (requests := self.requests.take()) is not None:
            self.run_one_pass(requests)
            if first and self.reloader.desired is None:
                errors = "; ".join(self.reloader.errors) or "nothing loaded"
                raise StartupError(
                    f"no valid desired state in {self.runtime.settings.desired_state} and no last known "
                    f"good revision in the history database: {errors}"
                )
            first = False
        self.stragglers.wait_all()  # their actions are recorded before the history closes
        self.log.info("daemon_stopped")
        return 0

    def _skip(self, resource: Resource[Any], bypass: bool) -> tuple[State, str] | None:
        """Why `resource` is not reconciled this pass: another shard acts on it (whatever asked
        for the pass), or it is backing off (unless the pass bypasses backoff)."""
        other = self.overlapped.get((str(resource.kind), resource.name))
        if other is not None:
            return State.CONFLICT, overlaps.message(other, self.runtime.settings.fight_window)
        entry = None if bypass else self.backoff.waiting(str(resource.kind), resource.name, self.clock())
        if entry is None:
            return None
        retry = rfc3339(entry.retry_at, timespec="seconds")
        return State.BACKING_OFF, (
            f"backing off until {retry} after {entry.failures} failure(s): {entry.last_error}"
        )

    def _check_overlaps(self, desired: DesiredState, now: datetime) -> None:
        """Which of this shard's resources another shard acted on within the fight window and
        also selects (overlaps.py); each overlap logged once when it starts and when it ends.
        A history that cannot be read keeps the overlaps last seen: the journal would refuse
        to send a mutation through it anyway."""
        history, selector = self.runtime.history, self.runtime.settings.selector
        if history is None or not selector.pairs:
            return
        try:
            acted = history.acted_since(now - self.runtime.settings.fight_window)
        except Exception as exc:  # noqa: BLE001 - see the docstring
            self.log.error("shard_overlap_check_failed", error=str(exc))
            return
        found = overlaps.overlapping(selector, desired.resources, acted)
        started, ended = overlaps.changes(self.overlapped, found)
        for (kind, name), shard in started:
            acted_at = rfc3339(found[(kind, name)].at, timespec="seconds")
            self.log.error(
                "shard_overlap", kind=kind, name=name, selector=selector.text, other=shard, acted_at=acted_at
            )
        for (kind, name), shard in ended:
            self.log.info("shard_overlap_ended", kind=kind, name=name, selector=selector.text, other=shard)
        self.overlapped = found

    def run_one_pass(self, requests: Sequence[PassRequest]) -> PassReport | None:
        """One pass; the report, or None when it failed part-way or had nothing to enforce."""
        now = self.clock()
        report: PassReport | None = None
        completed = False
        self.status.begin_pass()
        try:
            keys = self.reloader.reload(now)
            self.status.keep_only(keys)
            self.backoff.forget_except({(str(k), n) for k, n in keys})
            self.runtime.reporter.keep_only(keys)
            desired = self.reloader.desired
            if desired is not None:
                log = self.log.bind(revision=desired.revision)
                log.info(
                    "pass_started",
                    reasons=sorted({str(r.reason) for r in requests}),
                    wakes=sorted(r.detail for r in requests if r.detail),
                )
                bypass = any(r.reason in BYPASS_BACKOFF for r in requests)
                self._check_overlaps(desired, now)
                report = run_pass(
                    desired,
                    self.runtime.reconcilers,
                    self.runtime.aws,
                    self.runtime.executor,
                    clock=self.clock,
                    dry_run=self.runtime.settings.dry_run,
                    skip=lambda resource: self._skip(resource, bypass),
                    should_stop=lambda: self.requests.stopping,
                    until=lambda _still_running: self.requests.timed_pending(),
                    stragglers=self.stragglers,
                    fights=self.runtime.fights,
                )
                self._follow_stragglers(bypass)
                self._after_pass(report)
                log.info(
                    "pass_finished",
                    resources=len(report.statuses),
                    actions=len(report.records),
                    errors=len(report.errors),
                    drifted=len(report.drifted),
                )
        except Exception as exc:
            self.log.exception("pass_failed", error=str(exc))
            report = None
        else:
            completed = True
        finally:
            statuses = [s for s in report.statuses if s.state != State.NOT_REACHED] if report else []
            self.status.end_pass(self.clock(), statuses, completed=completed)
            if completed:
                self.runtime.reporter.pass_completed(self.clock())
            self._reschedule()
        return report

    def _follow_stragglers(self, bypass: bool) -> None:
        """Kinds still running when the pass ended (a timed pass was due) are reconciled again as
        soon as they finish, with the same backoff rule as the pass that left them."""
        late = self.stragglers.keys()
        if not late:
            return
        self.log.warning("kinds_still_running", kinds=[",".join(map(str, key)) for key in late])
        reason = PassReason.SCHEDULED if bypass else PassReason.LATE
        self.stragglers.when_done(lambda: self.requests.add(reason, "a kind finished late"))

    def _after_pass(self, report: PassReport) -> None:
        self.runtime.reporter.pass_reported(report)
        for status in report.statuses:
            self._backoff(status)

    def _backoff(self, status: ResourceStatus) -> None:
        kind = str(status.kind)
        if status.state == State.ERROR:
            # Counted from now, the end of the pass, not its start: a slow pass must not
            # leave the retry instant already in the past.
            entry = self.backoff.failed(kind, status.name, self.clock(), status.message)
            self.log.warning(
                "resource_backoff",
                kind=kind,
                name=status.name,
                failures=entry.failures,
                retry_at=rfc3339(entry.retry_at),
                error=status.message,
            )
        elif status.state not in UNRECONCILED:
            self.backoff.succeeded(kind, status.name)

    def _reschedule(self) -> None:
        """Replace the timed wake-ups. Never raises: the resync keeps the loop going."""
        if self.wakes is None or self.requests.stopping:
            return
        try:
            now = self.clock()
            wakes = wake_requests(
                self.reloader.desired, self.runtime.reconcilers, self.backoff.retry_times(), now, self.log
            )
            self.wakes.replace(wakes, now)
        except Exception as exc:  # noqa: BLE001 - see the docstring
            self.log.error("reschedule_failed", error=str(exc))
