"""A pass isolates kinds and resources: each kind on its own worker, deciding with the time it
applies at; one resource's exception is that resource's error (issue 11 items 1 and 5)."""

import signal
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from botocore.parsers import ResponseParserError

from homeostat.desired_state.identifiers import Kind
from homeostat.desired_state.loading import load_directory
from homeostat.desired_state.state import DesiredState, Resource
from homeostat.operator.execution import Executor
from homeostat.operator.history import HistoryQuery, HistoryStore
from homeostat.operator.passes import run_pass
from homeostat.operator.statuses import State
from homeostat.operator.stragglers import Stragglers
from homeostat.reconcilers.actions import Action, ApplyResult, Outcome, Plan
from homeostat.reconcilers.aws import STOP_SIGNALS, fan_out, together
from homeostat.reconcilers.registry import kind_table

T0 = datetime(2026, 11, 29, 5, 59, 58, tzinfo=UTC)
# Generous: only reached when the behaviour under test is broken.
TIMEOUT = 30.0


class FakeClock:
    """A clock that moves only when told to; safe to read from several threads."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)


class FakeKind:
    """A reconciler of `kind` whose every resource is one action; hooks let a test block,
    raise or move the clock in observe and apply."""

    def __init__(
        self,
        kind: Kind,
        *,
        on_observe: Callable[[], None] = lambda: None,
        on_apply: Callable[[Sequence[Action]], None] = lambda _actions: None,
    ) -> None:
        self.kind = kind
        self.kinds = (kind,)
        self.on_observe = on_observe
        self.on_apply = on_apply
        self.diffed_at: dict[str, datetime] = {}
        self.applied: list[str] = []
        self.observed: list[str] = []

    def observe(
        self, resources: Sequence[Resource], desired: Any, aws: Any, now: datetime
    ) -> dict[str, object]:
        self.observed.extend(r.name for r in resources)
        self.on_observe()
        return {r.name: "live" for r in resources}

    def diff(self, resource: Resource, observed: object, now: datetime) -> Plan:
        self.diffed_at[resource.name] = now
        action = Action(
            kind=self.kind,
            name=resource.name,
            action="fix",
            target=f"t/{resource.name}",
            before={"v": 1},
            after={"v": 2},
            reason="drift",
        )
        return Plan(self.kind, resource.name, actions=(action,))

    def apply(self, actions: Sequence[Action], aws: Any) -> list[ApplyResult]:
        self.on_apply(actions)
        self.applied.extend(a.name for a in actions)
        return [ApplyResult(a) for a in actions]

    def wake_times(self, desired: Any, now: datetime) -> list[datetime]:
        return []


def desired_state(
    tmp_path: Path, services: Sequence[str] = ("api",), alarms: Sequence[str] = ()
) -> DesiredState:
    directory = tmp_path / "desired"
    directory.mkdir(exist_ok=True)
    for name in services:
        (directory / f"{name}.yaml").write_text(
            "apiVersion: homeostat/v1\nkind: ECSService\n"
            f"metadata: {{name: {name}}}\nspec: {{cluster: c, service: {name}, desiredCount: 1}}\n"
        )
    for name in alarms:
        (directory / f"alarms-{name}.yaml").write_text(
            "apiVersion: homeostat/v1\nkind: AlarmActions\n"
            f"metadata: {{name: {name}}}\nspec: {{alarmNames: [{name}-alarm], actionsEnabled: true}}\n"
        )
    return load_directory(directory, kinds=kind_table())


@pytest.fixture
def store(tmp_path: Path) -> HistoryStore:
    return HistoryStore(f"sqlite:///{tmp_path / 'h.db'}")


def test_a_blocked_kind_does_not_delay_another_kinds_apply(tmp_path: Path, store: HistoryStore) -> None:
    """ECS observe hangs (a throttled service retrying) until the alarm kind has applied: run one
    after the other, the alarm call would wait for ECS's retries."""
    alarm_applied = threading.Event()
    released_by_alarm: list[bool] = []
    ecs = FakeKind(
        Kind("ECSService"), on_observe=lambda: released_by_alarm.append(alarm_applied.wait(TIMEOUT))
    )
    alarms = FakeKind(Kind("AlarmActions"), on_apply=lambda _a: alarm_applied.set())
    clock = FakeClock(T0)
    executor = Executor(store, None, structlog.get_logger(), clock)
    report = run_pass(
        desired_state(tmp_path, alarms=["db"]),
        (ecs, alarms),  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        executor,
        clock=clock,
        dry_run=False,
    )
    assert released_by_alarm == [True], "the alarm kind's apply waited for the blocked ECS observe"
    assert alarms.applied == ["db"]
    assert ecs.applied == ["api"]
    assert [(s.kind, s.name, s.state) for s in report.statuses] == [
        ("ECSService", "api", State.FIXED),
        ("AlarmActions", "db", State.FIXED),
    ]


def test_statuses_keep_registry_order_whatever_order_the_kinds_finish_in(
    tmp_path: Path, store: HistoryStore
) -> None:
    """The first kind finishes last; the report still lists it first (status and report order)."""
    second_done = threading.Event()
    first = FakeKind(Kind("AlarmActions"), on_observe=lambda: second_done.wait(TIMEOUT) or None)
    second = FakeKind(Kind("ECSService"), on_apply=lambda _a: second_done.set())
    clock = FakeClock(T0)
    report = run_pass(
        desired_state(tmp_path, services=["api", "web"], alarms=["db"]),
        (first, second),  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        Executor(store, None, structlog.get_logger(), clock),
        clock=clock,
        dry_run=False,
    )
    assert [(s.kind, s.name) for s in report.statuses] == [
        ("AlarmActions", "db"),
        ("ECSService", "api"),
        ("ECSService", "web"),
    ]


def test_a_kind_decides_with_the_time_read_after_its_observe_returned(
    tmp_path: Path, store: HistoryStore
) -> None:
    """An observe that takes 5 s across a window edge: the diff sees the instant after it, not
    the pass's start, so the edge is decided with the time the action is applied at."""
    clock = FakeClock(T0)
    slow = FakeKind(Kind("AlarmActions"), on_observe=lambda: clock.advance(5))
    report = run_pass(
        desired_state(tmp_path, services=[], alarms=["db"]),
        (slow,),  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        Executor(store, None, structlog.get_logger(), clock),
        clock=clock,
        dry_run=False,
    )
    assert report.started == T0
    assert slow.diffed_at == {"db": T0 + timedelta(seconds=5)}


@pytest.mark.parametrize(
    "error",
    [ValueError("unexpected response shape"), ResponseParserError("unexpected response shape")],
    ids=["bug", "botocore-parser"],
)
def test_an_exception_in_one_resources_apply_does_not_stop_the_next(
    tmp_path: Path, store: HistoryStore, error: Exception
) -> None:
    """apply of `api` raises (a bug, an unexpected botocore error type): `api` is an Error with the
    error text, its journal row becomes failed, and `web` is still applied."""

    def explode(actions: Sequence[Action]) -> None:
        if actions[0].name == "api":
            raise error

    ecs = FakeKind(Kind("ECSService"), on_apply=explode)
    clock = FakeClock(T0)
    report = run_pass(
        desired_state(tmp_path, services=["api", "web"]),
        (ecs,),  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        Executor(store, None, structlog.get_logger(), clock),
        clock=clock,
        dry_run=False,
    )
    assert ecs.applied == ["web"]
    states = {s.name: (s.state, s.message) for s in report.statuses}
    assert states["api"] == (State.ERROR, f"apply failed: {type(error).__name__}: unexpected response shape")
    assert states["web"][0] == State.FIXED
    rows = {r.name: r for r in store.query(HistoryQuery())}
    assert rows["api"].outcome == Outcome.FAILED
    assert rows["api"].error == f"apply failed: {type(error).__name__}: unexpected response shape"
    assert rows["web"].outcome == Outcome.APPLIED
    assert len(store.query(HistoryQuery())) == 2, "each journal row is completed, not duplicated"


def test_a_history_failure_in_one_kind_fails_the_pass_after_the_other_kinds_ran(tmp_path: Path) -> None:
    """A history that cannot be written is not a resource's error: the pass raises it (not
    progress), but only once every other kind has finished its work."""

    class BrokenHistory:
        def write(self, entries: Any) -> list[int | None]:
            raise OSError("disk full")

        def exists(self, record: Any) -> bool:
            return False

    clock = FakeClock(T0)
    ecs, alarms = FakeKind(Kind("ECSService")), FakeKind(Kind("AlarmActions"))
    executor = Executor(BrokenHistory(), None, structlog.get_logger(), clock)  # type: ignore[arg-type]
    with pytest.raises(OSError, match="disk full"):
        run_pass(
            desired_state(tmp_path, alarms=["db"]),
            (ecs, alarms),  # type: ignore[arg-type]
            None,  # type: ignore[arg-type]
            executor,
            clock=clock,
            dry_run=False,
        )
    assert ecs.observed == ["api"]
    assert alarms.observed == ["db"]
    assert ecs.applied == [], "nothing is sent without its journal row"
    assert alarms.applied == [], "nothing is sent without its journal row"


def _with_task_definition(tmp_path: Path) -> DesiredState:
    directory = tmp_path / "desired"
    directory.mkdir(exist_ok=True)
    (directory / "td.yaml").write_text(
        "apiVersion: homeostat/v1\nkind: ECSTaskDefinition\nmetadata: {name: api}\n"
        "spec: {family: api, definition: {containerDefinitions: []}}\n"
    )
    return desired_state(tmp_path)


@pytest.mark.parametrize("declared", [True, False])
def test_a_kind_declared_after_another_starts_once_that_kinds_worker_finished(
    tmp_path: Path, store: HistoryStore, declared: bool
) -> None:
    """ECSService is declared after ECSTaskDefinition (`KindDescriptor.after`): its observe starts
    only once the task definition kind has applied, so the pass that registers a revision also
    moves the service. Without the declaration (`after={}`) the kinds run side by side: the
    service observes while the task definition kind is still blocked in its apply."""
    td_applied = threading.Event()
    service_observed = threading.Event()
    seen_at_observe: list[bool] = []

    def block_until_service_observed(_actions: Sequence[Action]) -> None:
        service_observed.wait(0.5 if declared else TIMEOUT)
        td_applied.set()

    def observe_service() -> None:
        seen_at_observe.append(td_applied.is_set())
        service_observed.set()

    task_definitions = FakeKind(Kind("ECSTaskDefinition"), on_apply=block_until_service_observed)
    services = FakeKind(Kind("ECSService"), on_observe=observe_service)
    clock = FakeClock(T0)
    report = run_pass(
        _with_task_definition(tmp_path),
        (task_definitions, services),  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        Executor(store, None, structlog.get_logger(), clock),
        clock=clock,
        dry_run=False,
        after=None if declared else {},
    )
    assert seen_at_observe == [declared]
    assert [(s.kind, s.name, s.state) for s in report.statuses] == [
        ("ECSTaskDefinition", "api", State.FIXED),
        ("ECSService", "api", State.FIXED),
    ]


def test_a_dependency_must_come_earlier_in_the_pass_order() -> None:
    """`after` naming a later kind is refused when the registry is read: the waits cannot cycle."""
    from dataclasses import replace

    from homeostat.reconcilers import ecs_service, ecs_task_definition
    from homeostat.reconcilers.registry import dependencies

    assert dependencies() == {Kind("ECSService"): (Kind("ECSTaskDefinition"),)}
    backwards = replace(ecs_task_definition.DESCRIPTOR, after=(Kind("ECSService"),))
    with pytest.raises(ValueError, match="not earlier in the pass order"):
        dependencies((backwards, ecs_service.DESCRIPTOR))


def test_a_timed_pass_does_not_wait_for_a_kind_still_held_by_retries(
    tmp_path: Path, store: HistoryStore
) -> None:
    """ECS is stuck (retries) when a window edge comes due: the pass stops waiting for it, the next
    pass reconciles the alarms at once without starting ECS twice, and ECS's statuses arrive with
    the first pass after it finished (the 1 s window-edge promise, whatever another service does)."""
    release = threading.Event()
    ecs = FakeKind(Kind("ECSService"), on_observe=lambda: release.wait(TIMEOUT) or None)
    alarms = FakeKind(Kind("AlarmActions"))
    clock = FakeClock(T0)
    executor = Executor(store, None, structlog.get_logger(), clock)
    desired = desired_state(tmp_path, alarms=["db"])
    stragglers = Stragglers()

    def run(until: Callable[[set[Any]], bool]) -> Any:
        return run_pass(
            desired,
            (ecs, alarms),  # type: ignore[arg-type]
            None,  # type: ignore[arg-type]
            executor,
            clock=clock,
            dry_run=False,
            until=until,
            stragglers=stragglers,
        )

    # The edge comes due once only the held ECS worker is still running (no race with the alarms).
    first = run(lambda running: running == {(Kind("ECSService"),)})
    assert [(s.kind, s.name) for s in first.statuses] == [("AlarmActions", "db")]
    assert stragglers.keys() == [(Kind("ECSService"),)]
    second = run(lambda _running: False)  # the timed pass: ECS is still held, and not started again
    assert alarms.applied == ["db", "db"]
    assert ecs.observed == ["api"], "a kind still running was started a second time"
    assert [(s.kind, s.name) for s in second.statuses] == [("AlarmActions", "db")]
    finished = threading.Event()
    stragglers.when_done(finished.set)
    release.set()
    assert finished.wait(TIMEOUT)
    third = run(lambda _running: False)
    assert ("ECSService", "api", State.FIXED) in [(s.kind, s.name, s.state) for s in third.statuses]
    assert ecs.applied == ["api", "api"]  # the straggler's, then this pass's own
    assert stragglers.keys() == []


def test_without_a_deadline_the_pass_waits_for_every_kind(tmp_path: Path, store: HistoryStore) -> None:
    """`run --once` passes no `until`: even a slow kind is waited for and reported."""
    ecs = FakeKind(Kind("ECSService"), on_observe=lambda: threading.Event().wait(0.2) or None)
    clock = FakeClock(T0)
    report = run_pass(
        desired_state(tmp_path),
        (ecs,),  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        Executor(store, None, structlog.get_logger(), clock),
        clock=clock,
        dry_run=False,
        stragglers=Stragglers(),
    )
    assert [(s.kind, s.name, s.state) for s in report.statuses] == [("ECSService", "api", State.FIXED)]


def _stop_signals_blocked() -> bool:
    return signal.pthread_sigmask(signal.SIG_BLOCK, []) >= STOP_SIGNALS


def test_only_the_main_thread_can_receive_a_stop_signal(tmp_path: Path, store: HistoryStore) -> None:
    """Python runs signal handlers on the main thread only: a SIGINT the kernel handed to a worker
    blocked in a read would not interrupt the main thread's own read (a Ctrl-C'd `plan` hung for
    botocore's read timeout). So every thread of a pass (the kinds' workers, the mutation
    senders, the observe read threads) has SIGINT and SIGTERM blocked, and the main thread, which
    made them, keeps them unblocked."""
    seen: dict[str, bool] = {}

    def observe() -> None:
        seen["kind worker"] = _stop_signals_blocked()
        together(lambda: seen.__setitem__("read thread", _stop_signals_blocked()), lambda: None)
        fan_out(lambda name: seen.__setitem__(f"fan-out {name}", _stop_signals_blocked()), ["a", "b"])

    ecs = FakeKind(Kind("ECSService"), on_observe=observe)
    ecs.apply = lambda actions, aws: (  # type: ignore[method-assign]
        seen.__setitem__("sender", _stop_signals_blocked()) or [ApplyResult(a) for a in actions]
    )
    clock = FakeClock(T0)
    executor = Executor(store, None, structlog.get_logger(), clock)
    run_pass(desired_state(tmp_path), (ecs,), None, executor, clock=clock, dry_run=False)  # type: ignore[arg-type]
    assert seen == {
        "kind worker": True,
        "read thread": True,
        "fan-out a": True,
        "fan-out b": True,
        "sender": True,
    }
    assert not _stop_signals_blocked(), "the main thread's mask is left as it was"
