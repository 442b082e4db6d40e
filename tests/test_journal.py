"""The journal (contract section 4): a `pending` row committed before every AWS call, completed
in place when AWS answers; leftovers become `interrupted` at start-up and are observed again."""

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import structlog
from alembic import command
from alembic.config import Config

from homeostat.desired_state.identifiers import Kind
from homeostat.operator.execution import Executor, mark_interrupted
from homeostat.operator.history import MIGRATIONS, HistoryQuery, HistoryStore, create_history_engine
from homeostat.operator.passes import run_pass
from homeostat.operator.records import ActionRecord
from homeostat.reconcilers.actions import Action, ApplyResult, Finding, Outcome
from tests.test_pass_workers import FakeClock, FakeKind, desired_state

NOW = datetime(2026, 11, 29, 6, tzinfo=UTC)


def alarm_action(name: str) -> Action:
    return Action(
        kind=Kind("AlarmActions"),
        name="prod",
        action="enable_alarm_actions",
        target=name,
        before={"actionsEnabled": False},
        after={"actionsEnabled": True},
        reason="maintenance window sunday ended",
    )


class JournalReadingReconciler:
    """Reads the history from inside apply, i.e. while the AWS call is in flight."""

    kinds = (Kind("AlarmActions"),)

    def __init__(self, store: HistoryStore) -> None:
        self.store = store
        self.seen_during_call: list[tuple[str, Outcome]] = []

    def apply(self, actions: Sequence[Action], aws: Any) -> list[ApplyResult]:
        self.seen_during_call = [(r.target, r.outcome) for r in self.store.query(HistoryQuery())]
        return [ApplyResult(a, "throttled" if a.target == "b" else None) for a in actions]


@pytest.fixture
def store(tmp_path: Path) -> HistoryStore:
    return HistoryStore(f"sqlite:///{tmp_path / 'h.db'}")


def test_every_action_of_a_batch_is_journaled_before_the_call_and_completed_in_place(
    store: HistoryStore,
) -> None:
    """One Enable/DisableAlarmActions call for three names: three pending rows exist while AWS has
    the call; afterwards the same three rows hold applied/failed (no extra rows)."""
    reconciler = JournalReadingReconciler(store)
    executor = Executor(store, None, structlog.get_logger(), lambda: NOW)
    executor.execute(
        reconciler,  # type: ignore[arg-type]
        [alarm_action("a"), alarm_action("b"), alarm_action("c")],
        None,  # type: ignore[arg-type]
        revision="r1",
        dry_run=False,
    )
    assert reconciler.seen_during_call == [
        ("a", Outcome.PENDING),
        ("b", Outcome.PENDING),
        ("c", Outcome.PENDING),
    ]
    rows = store.query(HistoryQuery())
    assert [(r.target, r.outcome, r.error) for r in rows] == [
        ("a", Outcome.APPLIED, None),
        ("b", Outcome.FAILED, "throttled"),
        ("c", Outcome.APPLIED, None),
    ]
    assert all(r.reason == "maintenance window sunday ended" and r.revision == "r1" for r in rows)


def test_dry_runs_and_conflicts_are_not_journaled(store: HistoryStore) -> None:
    """Only mutations are journaled: what is never sent is written once, with its outcome."""
    reconciler = JournalReadingReconciler(store)
    executor = Executor(store, None, structlog.get_logger(), lambda: NOW)
    executor.execute(reconciler, [alarm_action("a")], None, revision="r", dry_run=True)  # type: ignore[arg-type]
    assert reconciler.seen_during_call == []
    assert [r.outcome for r in store.query(HistoryQuery())] == [Outcome.DRY_RUN]


def pending_row(store: HistoryStore, target: str = "a") -> ActionRecord:
    record = ActionRecord.of(alarm_action(target), Outcome.PENDING, time=NOW, revision="r1")
    store.add([record])
    return record


def test_pending_rows_found_at_start_up_become_interrupted_keeping_their_data(store: HistoryStore) -> None:
    """A process killed while AWS had the call left a pending row: it becomes interrupted, logged
    with its fields, everything else in the row unchanged; a second start finds nothing."""
    original = pending_row(store)
    with structlog.testing.capture_logs() as logs:
        (interrupted,) = mark_interrupted(store, structlog.get_logger())
    assert interrupted.outcome == Outcome.INTERRUPTED
    (row,) = store.query(HistoryQuery())
    assert row == interrupted
    assert {k: v for k, v in row.to_json().items() if k != "outcome"} == {
        k: v for k, v in original.to_json().items() if k != "outcome"
    }
    (line,) = [e for e in logs if e["event"] == "action_interrupted"]
    assert line["outcome"] == "interrupted"
    assert line["target"] == "a"
    assert line["kind"] == "AlarmActions"
    assert mark_interrupted(store, structlog.get_logger()) == []


def test_the_resource_of_an_interrupted_row_is_observed_again_by_the_first_pass(
    tmp_path: Path, store: HistoryStore
) -> None:
    """Level-triggered: the first pass after start-up observes the interrupted resource and
    re-sends what is still needed (the interrupted call may or may not have reached AWS)."""
    store.add([ActionRecord.of(alarm_action("db-alarm"), Outcome.PENDING, time=NOW, revision="r1")])
    mark_interrupted(store, structlog.get_logger())
    alarms = FakeKind(Kind("AlarmActions"))
    clock = FakeClock(NOW)
    run_pass(
        desired_state(tmp_path, services=[], alarms=["db"]),
        (alarms,),  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        Executor(store, None, structlog.get_logger(), clock),
        clock=clock,
        dry_run=False,
    )
    assert alarms.observed == ["db"]
    assert alarms.applied == ["db"]
    assert [r.outcome for r in store.query(HistoryQuery())] == [Outcome.INTERRUPTED, Outcome.APPLIED]


def test_an_interrupted_row_never_stands_for_a_recorded_finding(store: HistoryStore) -> None:
    """Findings are recorded once, ever, deduplicated by identity: an interrupted row with the same
    identity is not that record, so the finding is still written."""
    finding = Finding(
        Kind("SnapshotRetention"), "prod", "create_snapshot", "p-20261129-0300", "slot missed", "late"
    )
    executor = Executor(store, None, structlog.get_logger(), lambda: NOW)
    twin = ActionRecord(
        time=NOW,
        kind="SnapshotRetention",
        name="prod",
        action="create_snapshot",
        target="p-20261129-0300",
        outcome=Outcome.PENDING,
        before={},
        after={},
        reason="slot due",
        error="late",
        revision="r0",
        dry_run=False,
    )
    store.add([twin])
    mark_interrupted(store, structlog.get_logger())
    assert len(executor.record([finding], revision="r1")) == 1
    assert executor.record([finding], revision="r1") == [], "recorded once"
    assert [r.outcome for r in store.query(HistoryQuery())] == [Outcome.INTERRUPTED, Outcome.FAILED]


def test_migration_0003_splits_conflicts_folded_into_old_reasons(tmp_path: Path) -> None:
    """Rows written before the conflict column read like new ones: reason plain, conflict apart."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_history_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
        connection.execute(
            sa.text(
                "insert into actions (time, kind, name, action, target, outcome, before, after, reason,"
                " error, revision, dry_run) values ('2026-11-27 12:00:00', 'ECSService', 'worker',"
                " 'update_service', 'prod/worker', :outcome, '{}', '{}', :reason, null, 'r0', 0)"
            ),
            [
                {"outcome": "conflict", "reason": "drift: desiredCount differs; conflict: autoscaled"},
                {"outcome": "applied", "reason": "drift: desiredCount differs"},
            ],
        )
    engine.dispose()
    store = HistoryStore(url)
    conflicted, applied = store.query(HistoryQuery())
    assert (conflicted.reason, conflicted.conflict) == ("drift: desiredCount differs", "autoscaled")
    assert (applied.reason, applied.conflict) == ("drift: desiredCount differs", None)
    store.close()


SERVICE = (
    "apiVersion: homeostat/v1\nkind: ECSService\nmetadata: {name: api}\n"
    "spec: {cluster: prod, service: api, desiredCount: 2}\n"
)


def test_run_once_marks_leftover_pending_rows_interrupted_and_reconciles_their_resource(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`run --once` after a SIGKILLed process: the pending update_service row becomes interrupted
    and the service is observed again and fixed (a new applied row beside it)."""
    import boto3
    from moto import mock_aws

    from homeostat.operator.cli import main

    state = tmp_path / "state"
    state.mkdir()
    (state / "api.yaml").write_text(SERVICE)
    url = f"sqlite:///{tmp_path / 'history.db'}"
    killed = Action(
        Kind("ECSService"),
        "api",
        "update_service",
        "prod/api",
        {"desiredCount": 1},
        {"desiredCount": 2},
        "drift",
    )
    store = HistoryStore(url)
    store.add([ActionRecord.of(killed, Outcome.PENDING, time=NOW, revision="r0")])
    store.close()
    with mock_aws():
        ecs = boto3.client("ecs", region_name="us-east-1")
        ecs.create_cluster(clusterName="prod")
        ecs.register_task_definition(
            family="api", containerDefinitions=[{"name": "a", "image": "nginx", "memory": 64}]
        )
        ecs.create_service(cluster="prod", serviceName="api", taskDefinition="api:1", desiredCount=1)
        code = main(
            ["run", "--once", "--desired-state", str(state), "--history", url, "--region", "us-east-1"]
        )
        count = ecs.describe_services(cluster="prod", services=["api"])["services"][0]["desiredCount"]
    assert code == 0, capsys.readouterr()
    assert count == 2
    store = HistoryStore(url)
    rows = store.query(HistoryQuery())
    store.close()
    interrupted, *after = rows
    assert (interrupted.action, interrupted.outcome, interrupted.revision) == (
        "update_service",
        Outcome.INTERRUPTED,
        "r0",
    )
    assert [(r.action, r.outcome) for r in after] == [("update_service", Outcome.APPLIED)]


def test_daemon_start_marks_leftover_pending_rows_interrupted(tmp_path: Path) -> None:
    """The daemon's start-up step, once it holds the lease, before its first pass."""
    from prometheus_client import CollectorRegistry

    from homeostat.operator.daemon import Daemon
    from homeostat.operator.options import Settings
    from homeostat.operator.wiring import build_runtime

    desired = tmp_path / "desired"
    desired.mkdir()
    url = f"sqlite:///{tmp_path / 'h.db'}"
    pending_row(HistoryStore(url))
    settings = Settings(
        command="run",
        desired_state=desired,
        history=url,
        listen="127.0.0.1:0",
        resync=300,
        dry_run=False,
        region="us-east-1",
        log_format="json",
    )
    daemon = Daemon(build_runtime(settings, registry=CollectorRegistry(), reconcilers=()))
    history = daemon.runtime.history
    assert history is not None
    try:
        assert [r.outcome for r in history.query(HistoryQuery())] == [Outcome.PENDING]
        daemon.start()
        assert [r.outcome for r in history.query(HistoryQuery())] == [Outcome.INTERRUPTED]
    finally:
        daemon.close()
