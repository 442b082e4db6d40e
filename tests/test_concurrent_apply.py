"""Concurrent apply keeps every order-dependent safety rule (contract section 3 `--concurrency`).

A fake RDS fails random deletions; the real plan (`plan_snapshots`), the real stages and the
real executor send them through the pool. Whatever fails and however many workers: never fewer
than minKeep available owned snapshots at any instant, never more deletions per pass than
maxDeletionsPerRun, and every mutation has exactly one completed history row.
"""

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st

from homeostat.desired_state.identifiers import DBClusterId, Kind, SnapshotId
from homeostat.operator.execution import Executor
from homeostat.operator.records import ActionRecord
from homeostat.operator.sending import SHUTTING_DOWN
from homeostat.reconcilers.actions import Action, ApplyResult, Outcome
from homeostat.reconcilers.alarm_state import AlarmAction
from homeostat.reconcilers.alarms import AlarmReconciler
from homeostat.reconcilers.ecs_service import ECSAction
from homeostat.reconcilers.rds_snapshots import ClusterSnapshots
from homeostat.reconcilers.snapshot_policy import ObservedSnapshot
from homeostat.reconcilers.snapshot_retention import SnapshotAction, plan_snapshots
from homeostat.reconcilers.snapshot_retention_reconciler import SnapshotRetentionReconciler
from tests.snapshot_helpers import CLUSTER, PREFIX, spec_of

NOW = datetime(2026, 11, 29, 6, tzinfo=UTC)


class FakeRds:
    """Snapshots by identifier; deletions of `failing` answer an error. Checks minKeep at the
    moment of every deletion, under its lock (the instant that matters)."""

    def __init__(self, created: dict[str, datetime], min_keep: int) -> None:
        self.created = dict(created)
        self.min_keep = min_keep
        self.failing: set[str] = set()
        self.deletes = 0
        self.below_min_keep: list[int] = []
        self._lock = threading.Lock()

    def delete_db_cluster_snapshot(self, DBClusterSnapshotIdentifier: str) -> None:  # noqa: N803 - boto3's
        with self._lock:
            self.deletes += 1
            if DBClusterSnapshotIdentifier in self.failing:
                error = {"Error": {"Code": "InvalidDBClusterSnapshotStateFault", "Message": "busy"}}
                raise ClientError(error, "DeleteDBClusterSnapshot")  # type: ignore[arg-type]
            del self.created[DBClusterSnapshotIdentifier]
            if len(self.created) < self.min_keep:
                self.below_min_keep.append(len(self.created))

    def observed(self) -> ClusterSnapshots:
        with self._lock:
            snapshots = tuple(
                ObservedSnapshot(SnapshotId(i), DBClusterId(CLUSTER), "manual", "available", c)
                for i, c in self.created.items()
            )
        return ClusterSnapshots(DBClusterId(CLUSTER), snapshots)


class Aws:
    def __init__(self, rds: Any) -> None:
        self.rds = rds

    def client(self, service: str) -> Any:
        return self.rds


class RowsHistory:
    """The HistoryStore's write semantics in memory: insert rows without id, overwrite by id."""

    def __init__(self) -> None:
        self.by_id: dict[int, ActionRecord] = {}

    def write(self, entries: Sequence[tuple[int | None, ActionRecord]]) -> list[int | None]:
        ids: list[int | None] = []
        for row_id, record in entries:
            key = len(self.by_id) + 1 if row_id is None else row_id
            self.by_id[key] = record
            ids.append(key if row_id is None else None)
        return ids

    def exists(self, record: ActionRecord) -> bool:
        return False


@given(
    ages=st.lists(st.integers(min_value=0, max_value=30), max_size=40),
    min_keep=st.integers(min_value=0, max_value=6),
    cap=st.integers(min_value=1, max_value=20),
    concurrency=st.integers(min_value=1, max_value=8),
    failures=st.lists(st.sets(st.integers(min_value=0, max_value=39)), min_size=3, max_size=3),
)
def test_random_failed_deletions_never_break_min_keep_the_cap_or_the_journal(
    ages: list[int], min_keep: int, cap: int, concurrency: int, failures: list[set[int]]
) -> None:
    created = {f"{PREFIX}{i:03d}": NOW - timedelta(days=age, minutes=i) for i, age in enumerate(ages)}
    rds = FakeRds(created, min_keep)
    spec = spec_of(retention={"maxAge": "7d", "minKeep": min_keep, "maxDeletionsPerRun": cap}, protect=[])
    history = RowsHistory()
    executor = Executor(history, None, structlog.get_logger(), lambda: NOW, concurrency=concurrency)  # type: ignore[arg-type]
    reconciler = SnapshotRetentionReconciler()
    sent = 0
    for failing in failures:  # three passes, each with its own failures, each observing again
        rds.failing = {f"{PREFIX}{i:03d}" for i in failing}
        before = rds.deletes
        plan = plan_snapshots("aurora", spec, rds.observed(), NOW)
        (records,) = executor.execute_all([(reconciler, plan.actions, False, Aws(rds))], revision="r")
        assert rds.deletes - before <= cap, "never more deletions in a pass than maxDeletionsPerRun"
        assert rds.deletes - before == len(plan.actions), "each planned deletion is sent exactly once"
        assert [(r.target, r.outcome == Outcome.FAILED) for r in records] == [
            (a.target, a.target in rds.failing) for a in plan.actions
        ]
        sent += len(plan.actions)
    assert rds.below_min_keep == [], "never fewer than minKeep available owned snapshots"
    rows = list(history.by_id.values())
    assert len(rows) == sent, "one history row per mutation"
    assert all(r.outcome in {Outcome.APPLIED, Outcome.FAILED} for r in rows), "every row is completed"
    assert sorted(r.target for r in rows if r.outcome == Outcome.APPLIED) == sorted(
        set(created) - set(rds.created)
    )


def test_the_deletions_of_a_pass_are_in_flight_together() -> None:
    """Eight deletions with --concurrency 8 meet at a barrier of eight inside the AWS call:
    had they been sent one after another, the barrier would break (its timeout is generous)."""
    barrier = threading.Barrier(8, timeout=30)

    class MeetingRds(FakeRds):
        def delete_db_cluster_snapshot(self, DBClusterSnapshotIdentifier: str) -> None:  # noqa: N803
            barrier.wait()
            super().delete_db_cluster_snapshot(DBClusterSnapshotIdentifier)

    created = {f"{PREFIX}{i:03d}": NOW - timedelta(days=30, minutes=i) for i in range(9)}
    rds = MeetingRds(created, 1)
    spec = spec_of(retention={"maxAge": "7d", "minKeep": 1, "maxDeletionsPerRun": 20})
    plan = plan_snapshots("aurora", spec, rds.observed(), NOW)
    executor = Executor(None, None, structlog.get_logger(), lambda: NOW, concurrency=8)
    (records,) = executor.execute_all(
        [(SnapshotRetentionReconciler(), plan.actions, False, Aws(rds))], revision="r"
    )
    assert [r.outcome for r in records] == [Outcome.APPLIED] * 8
    assert list(rds.created) == [f"{PREFIX}000"], "the newest is kept (minKeep 1)"


def test_a_snapshot_create_waits_for_the_deletions_of_its_pass() -> None:
    """Deletions free quota: the create is the next stage, sent once every deletion answered."""
    reconciler = SnapshotRetentionReconciler()
    create = Action(Kind("SnapshotRetention"), "a", SnapshotAction.CREATE_SNAPSHOT, "s-new", {}, {}, "slot")
    deletions = [
        Action(Kind("SnapshotRetention"), "a", SnapshotAction.DELETE_SNAPSHOT, f"s{i}", {}, {}, "expired")
        for i in range(3)
    ]
    assert reconciler.stages([create, *deletions]) == [[[d] for d in deletions], [[create]]]


def test_alarm_changes_are_sent_in_batches_of_100_names_each_a_unit() -> None:
    """2,050 changes are 21 Enable/DisableAlarmActions calls (100 names each, at most), whatever the
    pool does: the batching is the stage split, never undone by concurrency."""
    actions = [
        Action(
            Kind("AlarmActions"),
            "p",
            AlarmAction.DISABLE if i % 2 else AlarmAction.ENABLE,
            f"a{i}",
            {},
            {},
            "d",
        )
        for i in range(2050)
    ]
    (stage,) = AlarmReconciler({}).stages(actions)  # type: ignore[arg-type]
    assert [len(u) for u in stage] == [100] * 10 + [25] + [100] * 10 + [25]
    assert all(len({a.action for a in unit}) == 1 for unit in stage)


class Recording:
    """A reconciler (without stages) whose apply raises for the resource `bad`; records its calls."""

    kinds = (Kind("ECSService"),)

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self._lock = threading.Lock()

    def apply(self, actions: Sequence[Action], aws: Any) -> list[ApplyResult]:
        with self._lock:
            self.calls.append([a.name for a in actions])
        if any(a.name == "bad" for a in actions):
            raise RuntimeError("bug")
        return [ApplyResult(a) for a in actions]


def ecs_action(name: str) -> Action:
    return Action(Kind("ECSService"), name, ECSAction.UPDATE_SERVICE, name, {}, {}, "drift")


def test_resources_of_a_kind_are_sent_together_and_one_failure_stays_its_own() -> None:
    """Each resource without stages is one apply call; an exception fails that resource only."""
    reconciler = Recording()
    history = RowsHistory()
    executor = Executor(history, None, structlog.get_logger(), lambda: NOW, concurrency=4)  # type: ignore[arg-type]
    items = [(reconciler, [ecs_action(n)], False, None) for n in ("a", "bad", "c")]
    records = executor.execute_all(items, revision="r")  # type: ignore[arg-type]
    assert sorted(reconciler.calls) == [["a"], ["bad"], ["c"]]
    assert [[(r.name, r.outcome) for r in rs] for rs in records] == [
        [("a", Outcome.APPLIED)],
        [("bad", Outcome.FAILED)],
        [("c", Outcome.APPLIED)],
    ]
    assert records[1][0].error == "apply failed: RuntimeError: bug"
    assert sorted((r.name, r.outcome) for r in history.by_id.values()) == [
        ("a", Outcome.APPLIED),
        ("bad", Outcome.FAILED),
        ("c", Outcome.APPLIED),
    ]


def test_a_unit_not_started_at_shutdown_is_not_sent_and_its_row_completed() -> None:
    reconciler = Recording()
    history = RowsHistory()
    executor = Executor(history, None, structlog.get_logger(), lambda: NOW, concurrency=1)  # type: ignore[arg-type]
    items = [(reconciler, [ecs_action("a")], False, None)]
    (records,) = executor.execute_all(items, revision="r", should_stop=lambda: True)  # type: ignore[arg-type]
    assert reconciler.calls == []
    assert [(r.outcome, r.error) for r in records] == [(Outcome.FAILED, SHUTTING_DOWN)]
    assert [r.outcome for r in history.by_id.values()] == [Outcome.FAILED]
