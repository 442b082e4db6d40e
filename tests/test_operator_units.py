"""The operator's own parts: executor sinks, backoff, health, lease, pass classification."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from homeostat.desired_state.identifiers import Kind, Revision
from homeostat.desired_state.state import DesiredState
from homeostat.metrics import Metrics
from homeostat.operator.backoff import CAP_SECONDS, Backoff, backoff_delay
from homeostat.operator.execution import Executor
from homeostat.operator.history import HistoryQuery, HistoryStore
from homeostat.operator.lease import Lease, LeaseHeld
from homeostat.operator.loop import Loop
from homeostat.operator.options import Settings
from homeostat.operator.records import ActionRecord, Unmanaged
from homeostat.operator.requests import PassReason, PassRequest, PassRequests
from homeostat.operator.status import LoopStatus
from homeostat.operator.statuses import State, classify
from homeostat.operator.wakes import WAKE_HORIZON, WakeScheduler, wake_requests
from homeostat.operator.wiring import build_runtime
from homeostat.reconcilers.actions import Action, ApplyResult, Measurement, ObserveError, Outcome, Plan
from homeostat.reconcilers.registry import gauges
from homeostat.reconcilers.snapshot_retention import OWNED

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def action(name: str, *, conflict: str | None = None) -> Action:
    return Action(
        kind=Kind("ECSService"),
        name=name,
        action="update_service",
        target=f"c/{name}",
        before={"desiredCount": 1},
        after={"desiredCount": 2},
        reason="drift",
        conflict=conflict,
    )


class FakeReconciler:
    kinds = (Kind("ECSService"),)

    def __init__(self, fail: set[str]) -> None:
        self.fail = fail
        self.applied: list[str] = []

    def apply(self, actions: list[Action], aws: Any) -> list[ApplyResult]:
        self.applied.extend(a.name for a in actions)
        return [ApplyResult(a, "boom" if a.name in self.fail else None) for a in actions]


@pytest.fixture
def store(tmp_path: Path) -> HistoryStore:
    return HistoryStore(f"sqlite:///{tmp_path / 'h.db'}")


def test_executor_hands_each_record_to_history_counter_and_log_alike(store: HistoryStore) -> None:
    """Every outcome reaches the three sinks alike; conflicts and dry runs are never applied."""
    metrics = Metrics(CollectorRegistry(), gauges())
    reconciler = FakeReconciler(fail={"b"})
    executor = Executor(store, metrics, structlog.get_logger(), lambda: NOW)
    with structlog.testing.capture_logs() as logs:
        applied = executor.execute(
            reconciler,
            [action("a"), action("b"), action("c", conflict="owned")],  # type: ignore[arg-type]
            None,
            revision="r1",
            dry_run=False,
        )
        dry = executor.execute(reconciler, [action("d")], None, revision="r1", dry_run=True)  # type: ignore[arg-type]
    assert reconciler.applied == ["a", "b"]
    outcomes = {r.name: r.outcome for r in [*applied, *dry]}
    assert outcomes == {
        "a": Outcome.APPLIED,
        "b": Outcome.FAILED,
        "c": Outcome.CONFLICT,
        "d": Outcome.DRY_RUN,
    }
    rows = {r.name: r for r in store.query(HistoryQuery())}
    assert {n: r.outcome for n, r in rows.items()} == outcomes
    assert rows["b"].error == "boom"
    assert rows["d"].dry_run
    assert {(e["name"], e["outcome"]) for e in logs if e["event"] == "action"} == {
        (n, str(o)) for n, o in outcomes.items()
    }
    for name, outcome in outcomes.items():
        assert (
            metrics.registry.get_sample_value(
                "homeostat_actions_total",
                {"kind": "ECSService", "action": "update_service", "outcome": str(outcome)},
            )
            == 1
        ), name
    line = next(e for e in logs if e["event"] == "action" and e["name"] == "a")
    assert {"kind", "name", "action", "before", "after", "outcome", "revision"} <= set(line)


@given(st.integers(min_value=1, max_value=60), st.floats(min_value=0, max_value=1))
def test_backoff_delay_stays_between_one_second_and_five_minutes(failures: int, jitter: float) -> None:
    """Any failure count and jitter give a delay in [1 s, 300 s]."""
    assert 1 <= backoff_delay(failures, jitter) <= CAP_SECONDS


@given(st.integers(min_value=1, max_value=30), st.floats(min_value=0, max_value=1))
def test_backoff_grows_with_failures_for_equal_jitter(failures: int, jitter: float) -> None:
    """One more failure never shortens the delay (same jitter draw)."""
    assert backoff_delay(failures + 1, jitter) >= backoff_delay(failures, jitter)


def test_backoff_skips_until_retry_and_resets_on_success() -> None:
    """A failed resource waits until its retry instant; success forgets it."""
    backoff = Backoff(jitter=lambda: 1.0)
    first = backoff.failed("ECSService", "api", NOW, "boom")
    assert first.retry_at == NOW + timedelta(seconds=1)
    second = backoff.failed("ECSService", "api", NOW, "boom")
    assert second.failures == 2
    assert second.retry_at == NOW + timedelta(seconds=2)
    assert backoff.waiting("ECSService", "api", NOW + timedelta(seconds=1)) is not None
    assert backoff.waiting("ECSService", "api", NOW + timedelta(seconds=2)) is None
    assert backoff.waiting("ECSService", "web", NOW) is None
    backoff.succeeded("ECSService", "api")
    assert backoff.waiting("ECSService", "api", NOW) is None
    assert backoff.retry_times() == set()


def test_health_fails_when_no_progress_within_three_resync_periods() -> None:
    """Healthy while a pass finished or one running started within 3 resyncs; a stuck pass is unhealthy."""
    status = LoopStatus(resync_seconds=10, started_monotonic=100.0)
    assert status.healthy(129.0)[0]
    assert not status.healthy(131.0)[0]
    status.pass_started, status.in_pass = 125.0, True
    assert status.healthy(154.0)[0]
    assert not status.healthy(156.0)[0]
    status.in_pass, status.pass_finished = False, 150.0
    assert status.healthy(179.0)[0]
    assert not status.healthy(181.0)[0]


def test_lease_refuses_a_second_holder_and_is_free_after_release(tmp_path: Path) -> None:
    """Two leases on one SQLite database: the second is refused until the first is released."""
    first = Lease(HistoryStore(f"sqlite:///{tmp_path / 'h.db'}").engine)
    second = Lease(HistoryStore(f"sqlite:///{tmp_path / 'h.db'}").engine)
    first.acquire()
    with pytest.raises(LeaseHeld, match="another homeostat daemon"):
        second.acquire()
    assert second.try_acquire() is False  # a standby's poll: not yet, and no exception
    assert first.try_acquire() is True  # already ours
    assert first.still_held()
    first.release()
    assert second.try_acquire() is True
    assert second.still_held()
    second.release()


@pytest.mark.parametrize(
    ("plan", "outcomes", "dry_run", "state"),
    [
        pytest.param(Plan(Kind("ECSService"), "a"), [], False, State.IN_SYNC, id="no-actions-in-sync"),
        pytest.param(Plan(Kind("ECSService"), "a", error="gone"), [], False, State.ERROR, id="observe-error"),
        pytest.param(
            Plan(Kind("ECSService"), "a", (action("a"),)),
            [Outcome.APPLIED],
            False,
            State.FIXED,
            id="applied-fixed",
        ),
        pytest.param(
            Plan(Kind("ECSService"), "a", (action("a"),)),
            [Outcome.FAILED],
            False,
            State.ERROR,
            id="failed-error",
        ),
        pytest.param(
            Plan(Kind("ECSService"), "a", (action("a"),)),
            [Outcome.DRY_RUN],
            True,
            State.DRIFTED,
            id="dry-run-drifted",
        ),
        pytest.param(
            Plan(Kind("ECSService"), "a", (action("a", conflict="x"),)),
            [Outcome.CONFLICT],
            False,
            State.CONFLICT,
            id="conflict",
        ),
    ],
)
def test_classify_names_the_state_of_a_resource_after_its_actions(
    plan: Plan, outcomes: list[Outcome], dry_run: bool, state: State
) -> None:
    """The one classification of a resource's result."""
    records = [
        ActionRecord.of(a, o, time=NOW, revision="r", error="e" if o == Outcome.FAILED else None)
        for a, o in zip(plan.actions, outcomes, strict=True)
    ]
    assert classify(plan, records, dry_run=dry_run)[0] == state


class FlakyObserver:
    """An ECSService reconciler whose observe fails while `failing` is set, counting calls."""

    kinds = (Kind("ECSService"),)

    def __init__(self) -> None:
        self.failing = True
        self.observed: list[str] = []

    def observe(self, resources: Any, desired: Any, aws: Any, now: datetime) -> dict[str, object]:
        self.observed.extend(r.name for r in resources)
        return {r.name: ObserveError("boom") if self.failing else object() for r in resources}

    def diff(self, resource: Any, observed: object, now: datetime) -> Plan:
        if isinstance(observed, ObserveError):
            return Plan(Kind("ECSService"), resource.name, error=observed.message)
        return Plan(Kind("ECSService"), resource.name)

    def apply(self, actions: Any, aws: Any) -> list[ApplyResult]:
        return []

    def wake_times(self, desired: Any, now: datetime) -> list[datetime]:
        return []


def unstarted_loop(tmp_path: Path, desired: Path, reconciler: Any, registry: CollectorRegistry) -> Loop:
    """The daemon's loop on the shared wiring, passes run by hand (no lease, HTTP, watcher or scheduler)."""

    settings = Settings(
        command="run",
        desired_state=desired,
        history=f"sqlite:///{tmp_path / 'h.db'}",
        listen="127.0.0.1:0",
        resync=60,
        dry_run=False,
        region="us-east-1",
        log_format="json",
    )
    return Loop(build_runtime(settings, registry=registry, reconcilers=(reconciler,)))


def test_a_scheduled_pass_retries_resources_in_backoff_and_a_resync_does_not(tmp_path: Path) -> None:
    """Backoff skips a failing resource on ordinary passes, but a window-edge or slot pass retries it."""
    desired = tmp_path / "desired"
    desired.mkdir()
    (desired / "api.yaml").write_text(
        "apiVersion: homeostat/v1\nkind: ECSService\nmetadata: {name: api}\n"
        "spec: {cluster: c, service: api, desiredCount: 1}\n"
    )
    flaky = FlakyObserver()
    loop = unstarted_loop(tmp_path, desired, flaky, CollectorRegistry())
    try:
        loop.run_one_pass([PassRequest(PassReason.STARTUP)])
        assert flaky.observed == ["api"]
        assert loop.backoff.waiting("ECSService", "api", loop.clock()) is not None
        loop.run_one_pass([PassRequest(PassReason.RESYNC)])
        assert flaky.observed == ["api"], "a resync pass must leave the backing-off resource alone"
        flaky.failing = False
        loop.run_one_pass([PassRequest(PassReason.SCHEDULED, "MaintenanceWindow 2026-11-29T06:00:00Z")])
        assert flaky.observed == ["api", "api"]
        assert loop.backoff.retry_times() == set()
    finally:
        loop.runtime.close()  # never started: no scheduler, server or lease to stop


class FailingOnceHistory:
    """A history store whose write number `fail_on` fails (disk full); the others work. Rows are
    kept by id, as the database keeps them: a journal row is overwritten when it completes."""

    def __init__(self, fail_on: int = 1) -> None:
        self.by_id: dict[int, ActionRecord] = {}
        self.writes = 0
        self.fail_on = fail_on

    @property
    def rows(self) -> list[ActionRecord]:
        return [self.by_id[i] for i in sorted(self.by_id)]

    def write(self, entries: list[tuple[int | None, ActionRecord]]) -> list[int | None]:
        self.writes += 1
        if self.writes == self.fail_on:
            raise OSError("disk full")
        ids: list[int | None] = []
        for row_id, record in entries:
            new = row_id is None
            key = len(self.by_id) + 1 if row_id is None else row_id
            self.by_id[key] = record
            ids.append(key if new else None)
        return ids

    def exists(self, record: ActionRecord) -> bool:
        return False


def test_a_failed_history_write_still_logs_and_counts_and_the_rows_are_written_later() -> None:
    """An action applied in AWS is never without a trace: log and counter first, the row on the next write."""
    metrics = Metrics(CollectorRegistry(), gauges())
    history = FailingOnceHistory(fail_on=2)  # the journal row is written, its completion is not
    reconciler = FakeReconciler(fail=set())
    executor = Executor(history, metrics, structlog.get_logger(), lambda: NOW)  # type: ignore[arg-type]
    with structlog.testing.capture_logs() as logs, pytest.raises(OSError, match="disk full"):
        executor.execute(reconciler, [action("a")], None, revision="r", dry_run=False)  # type: ignore[arg-type]
    assert reconciler.applied == ["a"]
    assert [e["event"] for e in logs] == ["action", "history_write_failed"]
    sample = {"kind": "ECSService", "action": "update_service", "outcome": "applied"}
    assert metrics.registry.get_sample_value("homeostat_actions_total", sample) == 1
    assert [(r.name, r.outcome) for r in history.rows] == [("a", Outcome.PENDING)]
    executor.execute(reconciler, [action("b")], None, revision="r", dry_run=False)  # type: ignore[arg-type]
    assert [r.name for r in history.rows] == ["a", "b"]
    assert [r.outcome for r in history.rows] == [Outcome.APPLIED, Outcome.APPLIED]


def test_an_event_whose_history_write_fails_is_logged_counted_and_written_later() -> None:
    """Events take the same path: log and counter first, the row kept for the next write."""
    metrics = Metrics(CollectorRegistry(), gauges())
    history = FailingOnceHistory()
    executor = Executor(history, metrics, structlog.get_logger(), lambda: NOW)  # type: ignore[arg-type]
    with structlog.testing.capture_logs() as logs, pytest.raises(OSError, match="disk full"):
        executor.record([Unmanaged("ECSService", "a")], revision="r")
    assert [e["event"] for e in logs] == ["action", "history_write_failed"]
    sample = {"kind": "ECSService", "action": "unmanage", "outcome": "applied"}
    assert metrics.registry.get_sample_value("homeostat_actions_total", sample) == 1
    executor.record([Unmanaged("ECSService", "b")], revision="r")
    assert [r.name for r in history.rows] == ["a", "b"]


def test_a_mutation_whose_journal_row_cannot_be_written_is_not_sent() -> None:
    """Journal before sending: when the pending row cannot be committed, AWS is not called and the
    action is recorded failed (logged and counted, its row written once the database is back)."""
    metrics = Metrics(CollectorRegistry(), gauges())
    history = FailingOnceHistory(fail_on=1)
    reconciler = FakeReconciler(fail=set())
    executor = Executor(history, metrics, structlog.get_logger(), lambda: NOW)  # type: ignore[arg-type]
    (record,) = executor.execute(reconciler, [action("a")], None, revision="r", dry_run=False)  # type: ignore[arg-type]
    assert reconciler.applied == []
    assert record.outcome == Outcome.FAILED
    assert record.error is not None
    assert record.error.startswith("not sent: the journal could not be written")
    assert [(r.name, r.outcome) for r in history.rows] == [("a", Outcome.FAILED)]


def test_a_failed_pass_is_not_progress() -> None:
    """Liveness counts from the last completed pass: a loop whose passes all fail turns unhealthy."""
    status = LoopStatus(resync_seconds=10, started_monotonic=100.0)
    status.begin_pass()
    status.end_pass(NOW, [], completed=False)
    assert status.passes == 0
    assert status.pass_finished is None
    assert not status.healthy(131.0)[0]


class MeasuringReconciler(FlakyObserver):
    """Reports a per-resource gauge on every plan."""

    def diff(self, resource: Any, observed: object, now: datetime) -> Plan:
        return Plan(
            Kind("ECSService"),
            resource.name,
            measurements=(Measurement(OWNED, {"name": resource.name}, 3.0),),
        )


def test_per_resource_gauges_go_with_a_removed_manifest(tmp_path: Path) -> None:
    """A gauge series a resource's plans set is removed when its manifest is removed."""

    desired = tmp_path / "desired"
    desired.mkdir()
    manifest = "apiVersion: homeostat/v1\nkind: ECSService\nmetadata: {{name: {n}}}\n"
    manifest += "spec: {{cluster: c, service: {n}}}\n"
    (desired / "a.yaml").write_text(manifest.format(n="a"))
    (desired / "b.yaml").write_text(manifest.format(n="b"))
    registry = CollectorRegistry()
    loop = unstarted_loop(tmp_path, desired, MeasuringReconciler(), registry)
    try:
        loop.run_one_pass([PassRequest(PassReason.STARTUP)])
        assert registry.get_sample_value("homeostat_snapshots_owned", {"name": "b"}) == 3.0
        (desired / "b.yaml").unlink()
        loop.run_one_pass([PassRequest(PassReason.CHANGE)])
        assert registry.get_sample_value("homeostat_snapshots_owned", {"name": "b"}) is None
        assert registry.get_sample_value("homeostat_snapshots_owned", {"name": "a"}) == 3.0
        assert (
            registry.get_sample_value("homeostat_resource_in_sync", {"kind": "ECSService", "name": "b"})
            is None
        )
    finally:
        loop.runtime.close()


def test_requests_coalesce_and_a_stop_ends_the_wait() -> None:
    """A burst of the same request is one pass; a stop makes `take` return None, and only once logs."""
    requests = PassRequests()
    for _ in range(5):
        requests.add(PassReason.CHANGE)
    requests.add(PassReason.SCHEDULED, "MaintenanceWindow 2026-11-29T06:00:00Z")
    assert requests.take() == [
        PassRequest(PassReason.CHANGE),
        PassRequest(PassReason.SCHEDULED, "MaintenanceWindow 2026-11-29T06:00:00Z"),
    ]
    assert requests.stop() is True
    assert requests.stop() is False
    assert requests.take() is None


class WakingReconciler(FlakyObserver):
    """Wakes at fixed instants: one past, one ahead, one beyond the horizon, and a naive one."""

    def __init__(self, instants: list[datetime]) -> None:
        super().__init__()
        self.instants = instants

    def wake_times(self, desired: Any, now: datetime) -> list[datetime]:
        return self.instants


def test_wakes_request_due_retries_at_once_and_schedule_only_future_instants_within_the_horizon() -> None:
    """A due backoff retry is requested now; a reconciler's past instant is dropped; a future one is a
    `scheduled` date job; one beyond the horizon waits for a later pass; a naive one is logged, not fatal."""
    ahead = NOW + timedelta(minutes=5)
    reconciler = WakingReconciler([NOW - timedelta(minutes=1), ahead, NOW + WAKE_HORIZON + timedelta(days=1)])
    desired = DesiredState(Revision("r"), Path("."))  # no resources: no hold ends; the fakes never look
    with structlog.testing.capture_logs() as logs:
        wakes = wake_requests(
            desired,
            (reconciler,),
            [NOW - timedelta(seconds=1)],
            NOW,
            structlog.get_logger(),
        )
        naive = wake_requests(
            desired,
            (WakingReconciler([datetime(2026, 11, 28)]),),
            [],
            NOW,
            structlog.get_logger(),
        )
    assert naive == {}
    assert [e["event"] for e in logs] == ["wake_times_failed"]
    requests = PassRequests()
    scheduler = WakeScheduler(requests, resync_seconds=60)
    scheduler.replace(wakes, NOW)
    assert requests.take(poll_seconds=0.01) == [PassRequest(PassReason.BACKOFF_EXPIRY)]
    jobs = scheduler.scheduler.get_jobs()
    assert [(job.args[0], job.trigger.run_date) for job in jobs] == [(PassReason.SCHEDULED, ahead)]
    scheduler.replace({}, NOW)
    assert scheduler.scheduler.get_jobs() == []


def test_a_dry_run_status_names_each_action_and_its_target() -> None:
    """Two alarms of one policy are told apart in `run --once --dry-run`'s status (issue 12)."""
    first = replace(action("policy"), target="prod-api-5xx-rate", reason="drift")
    second = replace(action("policy"), target="prod-api-latency-p99", reason="drift")
    plan = Plan(Kind("ECSService"), "policy", (first, second))
    records = [ActionRecord.of(a, Outcome.DRY_RUN, time=NOW, revision="r") for a in plan.actions]
    state, message = classify(plan, records, dry_run=True)
    assert state == State.DRIFTED
    assert message == (
        f"dry run: {first.action} prod-api-5xx-rate (drift); {first.action} prod-api-latency-p99 (drift)"
    )
