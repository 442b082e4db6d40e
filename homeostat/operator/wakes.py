"""Wake scheduling: APScheduler jobs that only request passes.

Two kinds of job: the resync interval, and one-off date jobs at concrete
instants, replaced after every pass: each reconciler's wake times (snapshot
slots, window starts and ends; a pure function of the desired state and
`now`) and each backoff's retry instant. Cron semantics live in our own
tested functions; APScheduler only ever gets instants and the interval.

APScheduler (with tzlocal and multiprocessing, ~25 ms) is imported when a daemon builds its
`WakeScheduler`, not with this module: the loop imports it for `wake_requests`, and
`run --once` schedules nothing.
"""

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from homeostat.desired_state.state import DesiredState
from homeostat.operator.clock import rfc3339
from homeostat.operator.requests import PassReason, PassRequest, PassRequests
from homeostat.reconcilers.base import AnyReconciler

WAKE_PREFIX = "wake-"
# Timed wake-ups further ahead than this are scheduled on a later pass (each pass reschedules).
WAKE_HORIZON = timedelta(days=8)


def wake_requests(
    desired: DesiredState | None,
    reconcilers: Sequence[AnyReconciler],
    retry_times: Iterable[datetime],
    now: datetime,
    log: Any,
) -> dict[datetime, PassRequest]:
    """The instant of every wake and the request it makes (a backoff retry, the end of a bounded
    hold, or a reconciler's wake).

    A reconciler whose wake times fail is logged and skipped: it must not stop the others.
    """
    instants: dict[datetime, PassRequest] = {}
    for retry in retry_times:
        instants[retry] = PassRequest(PassReason.BACKOFF_EXPIRY)
    if desired is None:
        return instants
    for resource in desired.resources:
        # A bounded hold ends by itself: a pass at its `until` reconciles the resource again.
        hold = resource.manifest.spec.hold
        if hold is not None and hold.until > now:
            detail = f"{resource.kind} {resource.name} hold ends {rfc3339(hold.until)}"
            instants[hold.until] = PassRequest(PassReason.SCHEDULED, detail)
    for reconciler in reconcilers:
        kinds = ",".join(map(str, reconciler.kinds))
        try:
            for instant in reconciler.wake_times(desired, now):
                if instant.tzinfo is None:
                    raise ValueError(f"naive wake time {instant.isoformat()}")
                instants[instant] = PassRequest(PassReason.SCHEDULED, f"{kinds} {rfc3339(instant)}")
        except Exception as exc:  # noqa: BLE001 - a bad wake time must not stop the loop
            log.warning("wake_times_failed", kind=kinds, error=str(exc))
    return instants


class WakeScheduler:
    def __init__(self, requests: PassRequests, resync_seconds: int) -> None:
        self.requests = requests
        self.resync_seconds = resync_seconds
        from apscheduler.schedulers.background import BackgroundScheduler  # see the module docstring

        self.scheduler = BackgroundScheduler(timezone=UTC)

    def start(self) -> None:
        self.scheduler.add_job(
            self.requests.add,
            "interval",
            seconds=self.resync_seconds,
            args=[PassReason.RESYNC],
            id="resync",
            coalesce=True,
            max_instances=1,
        )
        self.scheduler.start()

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def replace(self, wakes: Mapping[datetime, PassRequest], now: datetime) -> None:
        """Replace every date job by `wakes`; those already due are requested at once."""
        from apscheduler.jobstores.base import JobLookupError  # loaded with the scheduler already

        for job in self.scheduler.get_jobs():
            if job.id.startswith(WAKE_PREFIX):
                with contextlib.suppress(JobLookupError):  # it fired (and went) meanwhile
                    self.scheduler.remove_job(job.id)
        for instant in sorted(wakes):
            request = wakes[instant]
            if instant <= now:
                # A retry already due runs at once; a reconciler's past instant is gone.
                if request.reason == PassReason.BACKOFF_EXPIRY:
                    self.requests.add(request.reason, request.detail)
            elif instant <= now + WAKE_HORIZON:
                self.scheduler.add_job(
                    self.requests.add,
                    "date",
                    run_date=instant,
                    args=[request.reason, request.detail],
                    id=f"{WAKE_PREFIX}{instant.timestamp()}",
                    misfire_grace_time=None,
                    coalesce=True,
                    replace_existing=True,
                )
