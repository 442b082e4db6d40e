"""Watched rollouts (issue 13 item 4): Deploying, DeploymentFailed, held back, never flapping.

moto never rolls deployments (every deployment it shows stays as created), so the rollout
states are a fake ECS client's stubbed DescribeServices answers, shaped as AWS's: a PRIMARY
deployment per UpdateService, `rolloutState` IN_PROGRESS/COMPLETED/FAILED with its
`rolloutStateReason`, and the circuit breaker's rollback (a new PRIMARY on the previous
revision whose reason says "ECS deployment circuit breaker: rolling back"). The decisions
are the pure `rollouts.verdict`; the passes run through `run_pass` with a real SQLite history.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from homeostat.desired_state.loading import load_directory
from homeostat.desired_state.state import DesiredState
from homeostat.metrics import Metrics
from homeostat.operator.execution import Executor
from homeostat.operator.history import HistoryQuery, HistoryStore
from homeostat.operator.passes import run_pass
from homeostat.operator.reporter import Reporter
from homeostat.operator.statuses import PassReport, State
from homeostat.reconcilers.actions import RolloutState
from homeostat.reconcilers.ecs_service_reconciler import ECSServiceReconciler
from homeostat.reconcilers.registry import gauges, kind_table
from homeostat.reconcilers.rollouts import Deployment, Remembered, RolloutMemory, verdict

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/shop-api:{}"
ROLLBACK = "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/1"
TASKS_FAILED = "ECS deployment circuit breaker: tasks failed to start."


def is_two(arn: str) -> bool:
    return arn == ARN.format(2)


# --- the pure verdict ------------------------------------------------------------------------------


def test_a_deployment_in_progress_is_deploying_and_holds_the_task_definition_back() -> None:
    found = verdict(is_two, "m1", [Deployment(ARN.format(2), "PRIMARY", "IN_PROGRESS", "")], RolloutMemory())
    assert found is not None
    assert found.rollout.state == RolloutState.DEPLOYING
    assert found.holds_back
    assert found.new_failure is None


def test_a_deployment_of_the_wanted_revision_is_not_watched_once_the_service_runs_another() -> None:
    """Someone deployed another revision: the wanted one's deployment (being replaced, or a record
    that is never updated, as moto's) is not followed; the service is moved back as drift."""
    listed = [Deployment(ARN.format(2), "PRIMARY", "IN_PROGRESS", "")]
    assert verdict(is_two, "m1", listed, None, current=ARN.format(1)) is None
    watched = verdict(is_two, "m1", listed, None, current=ARN.format(2))
    assert watched is not None
    assert watched.rollout.state == RolloutState.DEPLOYING
    failed = [Deployment(ARN.format(2), "ACTIVE", "FAILED", TASKS_FAILED)]
    held = verdict(is_two, "m1", failed, None, current=ARN.format(1))
    assert held is not None
    assert held.rollout.state == RolloutState.FAILED, "a failure is still seen after the rollback"


def test_a_completed_deployment_is_completed_and_holds_nothing_back() -> None:
    found = verdict(is_two, "m1", [Deployment(ARN.format(2), "PRIMARY", "COMPLETED", "")], None)
    assert found is not None
    assert found.rollout.state == RolloutState.COMPLETED
    assert not found.holds_back


def test_a_failed_deployment_is_a_new_failure_with_its_reason() -> None:
    deployments = [
        Deployment(ARN.format(1), "PRIMARY", "IN_PROGRESS", ROLLBACK),
        Deployment(ARN.format(2), "ACTIVE", "FAILED", TASKS_FAILED),
    ]
    found = verdict(is_two, "m1", deployments, None)
    assert found is not None
    assert found.rollout.state == RolloutState.FAILED
    assert found.new_failure == (ARN.format(2), TASKS_FAILED)
    assert TASKS_FAILED in found.rollout.message


def test_a_rollback_after_homeostat_sent_the_revision_is_a_failure_even_once_the_deployment_is_gone() -> None:
    sent = RolloutMemory(sent=(Remembered(NOW, {"taskDefinition": ARN.format(2)}, None),))
    found = verdict(is_two, "m1", [Deployment(ARN.format(1), "PRIMARY", "COMPLETED", ROLLBACK)], sent)
    assert found is not None
    assert found.new_failure == (ARN.format(2), ROLLBACK)
    # Without the memory of the send (plan has no history) a rollback is not blamed on revision 2.
    assert verdict(is_two, "m1", [Deployment(ARN.format(1), "PRIMARY", "COMPLETED", ROLLBACK)], None) is None


def test_a_remembered_failure_holds_back_under_the_same_manifests_only() -> None:
    failed = (Remembered(NOW, {"taskDefinition": ARN.format(2), "manifests": "m1"}, "boom"),)
    memory = RolloutMemory(
        sent=(Remembered(NOW - timedelta(minutes=1), {"taskDefinition": ARN.format(2)}, None),)
    )
    memory = RolloutMemory(sent=memory.sent, failed=failed)
    rolled_back = [Deployment(ARN.format(1), "PRIMARY", "COMPLETED", ROLLBACK)]
    held = verdict(is_two, "m1", rolled_back, memory)
    assert held is not None
    assert held.holds_back
    assert held.new_failure is None
    # Changed manifests: the old rollback is not this send's failure; the revision may be sent.
    assert verdict(is_two, "m2", rolled_back, memory) is None


def test_a_failure_no_longer_holds_back_once_another_revision_was_sent_after_it() -> None:
    """A fix deployed after the failure, then reverted to the failed manifests: a new deployment."""
    failure = Remembered(NOW, {"taskDefinition": ARN.format(2), "manifests": "m1"}, "boom")
    count_only = Remembered(NOW + timedelta(minutes=1), {"desiredCount": 3}, None)
    held = verdict(is_two, "m1", [], RolloutMemory(sent=(count_only,), failed=(failure,)))
    assert held is not None
    assert held.holds_back
    fix = Remembered(NOW + timedelta(minutes=2), {"taskDefinition": ARN.format(3)}, None)
    assert verdict(is_two, "m1", [], RolloutMemory(sent=(fix, count_only), failed=(failure,))) is None


deployment_st = st.builds(
    Deployment,
    st.sampled_from([ARN.format(1), ARN.format(2), ARN.format(3)]),
    st.sampled_from(["PRIMARY", "ACTIVE", "INACTIVE"]),
    st.sampled_from([None, "IN_PROGRESS", "COMPLETED", "FAILED"]),
    st.sampled_from(["", ROLLBACK, TASKS_FAILED]),
)


def remembered_st(before: datetime | None = None) -> st.SearchStrategy[Remembered]:
    """History rows of task definitions 1 and 2; `before`: only rows older than that."""
    latest = before.replace(tzinfo=None) - timedelta(seconds=1) if before else datetime(9999, 1, 1)
    return st.builds(
        Remembered,
        st.datetimes(max_value=latest, timezones=st.just(UTC)),
        st.fixed_dictionaries(
            {
                "taskDefinition": st.sampled_from([ARN.format(1), ARN.format(2)]),
                "manifests": st.sampled_from(["m1", "m2"]),
            }
        ),
        st.none(),
    )


@given(
    st.lists(deployment_st, max_size=4),
    st.lists(remembered_st(before=NOW), max_size=3),
    st.lists(remembered_st(), max_size=3),
)
def test_a_recorded_failure_always_holds_its_revision_back_under_unchanged_manifests(
    deployments: list[Deployment], sent: list[Remembered], other_failures: list[Remembered]
) -> None:
    """Whatever DescribeServices shows and whatever else was recorded, as long as homeostat sent
    no other revision since the failure (the manifests did not change and back)."""
    failure = Remembered(NOW, {"taskDefinition": ARN.format(2), "manifests": "m1"}, "boom")
    memory = RolloutMemory(tuple(sent), (*other_failures, failure))
    found = verdict(is_two, "m1", deployments, memory)
    assert found is not None
    assert found.rollout.state == RolloutState.FAILED
    assert found.holds_back
    assert found.new_failure is None  # recorded once: a remembered failure is not reported again


# --- passes against a stubbed ECS ----------------------------------------------------------------


class RollingEcs:
    """A fake ECS client whose deployments the test rolls (moto never does). UpdateService
    starts a PRIMARY deployment IN_PROGRESS; `settle` completes it, `fail` has the circuit
    breaker roll back to the previous revision."""

    def __init__(self) -> None:
        self.task_definition = ARN.format(1)
        self.deployments: list[dict[str, Any]] = [
            {"status": "PRIMARY", "taskDefinition": ARN.format(1), "rolloutState": "COMPLETED"}
        ]
        self.updates: list[dict[str, Any]] = []

    def describe_services(self, cluster: str, services: list[str]) -> dict[str, Any]:
        item = {
            "serviceName": "api",
            "status": "ACTIVE",
            "desiredCount": 1,
            "runningCount": 1,
            "taskDefinition": self.task_definition,
            "deployments": self.deployments,
        }
        return {"services": [item], "failures": []}

    def update_service(self, **params: Any) -> None:
        self.updates.append(params)
        if "taskDefinition" in params:
            previous = self.task_definition
            self.task_definition = ARN.format(params["taskDefinition"].rsplit(":", 1)[-1])
            self.deployments = [
                {"status": "PRIMARY", "taskDefinition": self.task_definition, "rolloutState": "IN_PROGRESS"},
                {"status": "ACTIVE", "taskDefinition": previous, "rolloutState": "COMPLETED"},
            ]

    def settle(self) -> None:
        self.deployments = [{**self.deployments[0], "rolloutState": "COMPLETED"}]

    def fail(self, *, forget: bool = False) -> None:
        failed = self.deployments[0]
        self.task_definition = self.deployments[1]["taskDefinition"]
        rollback = {
            "status": "PRIMARY",
            "taskDefinition": self.task_definition,
            "rolloutState": "COMPLETED",
            "rolloutStateReason": ROLLBACK,
        }
        gone = {**failed, "status": "ACTIVE", "rolloutState": "FAILED", "rolloutStateReason": TASKS_FAILED}
        self.deployments = [rollback] if forget else [rollback, gone]


class Clients:
    def __init__(self, ecs: RollingEcs) -> None:
        self.ecs = ecs

    def client(self, service: str) -> Any:
        if service == "ecs":
            return self.ecs
        return type(
            "NoTargets", (), {"describe_scalable_targets": lambda self, **_: {"ScalableTargets": []}}
        )()


def pinned(directory: Path, revision: int, count: int = 1) -> DesiredState:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "api.yaml").write_text(
        "apiVersion: homeostat/v1\nkind: ECSService\nmetadata: {name: api}\n"
        f"spec: {{cluster: prod, service: api, desiredCount: {count}, "
        f"taskDefinition: 'shop-api:{revision}'}}\n"
    )
    return load_directory(directory, kinds=kind_table())


def one_pass(
    desired: DesiredState, ecs: RollingEcs, store: HistoryStore | None
) -> tuple[PassReport, list[datetime]]:
    reconciler = ECSServiceReconciler(recall=store)
    executor = Executor(store, None, structlog.get_logger(), lambda: NOW)
    report = run_pass(desired, [reconciler], Clients(ecs), executor, clock=lambda: NOW, dry_run=False)
    return report, reconciler.wake_times(desired, NOW)


def test_a_deployment_is_followed_until_it_completes_with_timed_passes(tmp_path: Path) -> None:
    ecs, store = RollingEcs(), HistoryStore(f"sqlite:///{tmp_path / 'h.db'}")
    desired = pinned(tmp_path / "d", 2)
    report, wakes = one_pass(desired, ecs, store)
    assert [u["taskDefinition"] for u in ecs.updates] == ["shop-api:2"]
    assert report.statuses[0].state == State.FIXED
    assert wakes == [NOW + timedelta(seconds=5)]  # the rollout is followed soon, not at the resync
    report, wakes = one_pass(desired, ecs, store)
    assert report.statuses[0].state == State.DEPLOYING
    assert report.statuses[0].plan is not None
    gauge = {m.labels["state"]: m.value for m in report.statuses[0].plan.measurements}
    assert gauge == {"deploying": 1, "completed": 0, "failed": 0}
    assert wakes == [NOW + timedelta(seconds=5)]
    assert len(ecs.updates) == 1  # nothing re-sent while it settles
    ecs.settle()
    report, wakes = one_pass(desired, ecs, store)
    assert report.statuses[0].state == State.IN_SYNC
    assert wakes == []


def test_a_revision_deployed_by_hand_during_a_rollout_is_moved_back(tmp_path: Path) -> None:
    """The demo's `roll_back` against moto: the service runs :1 by hand while the deployment list
    still shows :2 in progress. homeostat does not wait for that deployment for ever."""
    ecs, store = RollingEcs(), HistoryStore(f"sqlite:///{tmp_path / 'h.db'}")
    desired = pinned(tmp_path / "d", 2)
    one_pass(desired, ecs, store)
    ecs.task_definition = ARN.format(1)  # UpdateService by hand; the deployments are not updated
    report, _ = one_pass(desired, ecs, store)
    assert [u["taskDefinition"] for u in ecs.updates] == ["shop-api:2", "shop-api:2"]
    assert report.statuses[0].state == State.FIXED


def test_a_failed_rollout_is_recorded_once_and_its_revision_is_never_sent_again(tmp_path: Path) -> None:
    ecs, store = RollingEcs(), HistoryStore(f"sqlite:///{tmp_path / 'h.db'}")
    desired = pinned(tmp_path / "d", 2)
    one_pass(desired, ecs, store)
    ecs.fail()
    for forget in (False, True):  # still listed as FAILED, then gone from DescribeServices
        if forget:
            ecs.deployments = ecs.deployments[:1]
        for _ in range(3):
            report, wakes = one_pass(desired, ecs, store)
            status = report.statuses[0]
            assert status.state == State.DEPLOYMENT_FAILED
            assert TASKS_FAILED in status.message or ROLLBACK in status.message
            assert wakes == []
    assert len(ecs.updates) == 1
    failures = [r for r in store.query(HistoryQuery(limit=100)) if r.action == "deployment_failed"]
    assert len(failures) == 1
    assert failures[0].error is not None
    assert TASKS_FAILED in failures[0].error
    assert failures[0].after["taskDefinition"] == ARN.format(2)
    # A restart (a new reconciler, the same history) still holds it back.
    report, _ = one_pass(desired, ecs, store)
    assert report.statuses[0].state == State.DEPLOYMENT_FAILED
    assert len(ecs.updates) == 1
    # A changed manifest sends it again, once.
    changed = pinned(tmp_path / "d", 2, count=2)
    one_pass(changed, ecs, store)
    assert [u.get("taskDefinition") for u in ecs.updates] == ["shop-api:2", "shop-api:2"]


def test_deployment_state_is_exported_and_a_failed_rollout_counts_as_a_successful_reconcile(
    tmp_path: Path,
) -> None:
    ecs, store = RollingEcs(), HistoryStore(f"sqlite:///{tmp_path / 'h.db'}")
    desired = pinned(tmp_path / "d", 2)
    registry = CollectorRegistry()
    reporter = Reporter(Metrics(registry, gauges()))
    one_pass(desired, ecs, store)
    ecs.fail()
    report, _ = one_pass(desired, ecs, store)
    reporter.pass_reported(report)
    values = {
        state: registry.get_sample_value("homeostat_deployment_state", {"name": "api", "state": state})
        for state in ("deploying", "completed", "failed")
    }
    assert values == {"deploying": 0, "completed": 0, "failed": 1}
    labels = {"kind": "ECSService", "result": "success"}
    assert registry.get_sample_value("homeostat_reconcile_total", labels) == 1
    assert registry.get_sample_value("homeostat_resource_in_sync", {"kind": "ECSService", "name": "api"}) == 0


def test_a_rollback_seen_only_after_the_deployment_left_the_list_is_a_failure(tmp_path: Path) -> None:
    ecs, store = RollingEcs(), HistoryStore(f"sqlite:///{tmp_path / 'h.db'}")
    desired = pinned(tmp_path / "d", 2)
    one_pass(desired, ecs, store)
    ecs.fail(forget=True)
    report, _ = one_pass(desired, ecs, store)
    assert report.statuses[0].state == State.DEPLOYMENT_FAILED
    assert ROLLBACK in report.statuses[0].message
    one_pass(desired, ecs, store)
    assert len(ecs.updates) == 1


def test_plan_without_a_history_shows_a_listed_failure_and_never_crashes(tmp_path: Path) -> None:
    ecs, store = RollingEcs(), HistoryStore(f"sqlite:///{tmp_path / 'h.db'}")
    desired = pinned(tmp_path / "d", 2)
    one_pass(desired, ecs, store)
    ecs.fail()
    reconciler = ECSServiceReconciler()  # plan's: no history store
    [service] = desired.resources
    plan = reconciler.diff(service, reconciler.observe([service], desired, Clients(ecs), NOW)["api"], NOW)
    assert plan.rollout is not None
    assert plan.rollout.state == RolloutState.FAILED
    assert plan.actions == ()
    assert len(plan.findings) == 1
    assert any(TASKS_FAILED in note for note in plan.notes)  # what `plan` prints


@given(st.lists(st.sampled_from(["wait", "settle", "fail", "fail_forget"]), max_size=12))
def test_a_service_never_flaps_whatever_the_rollouts_do(steps: list[str]) -> None:
    """Any sequence of rollout outcomes under unchanged manifests: revision 2 is sent at most
    once after a failure of it (in fact once: the first send), and never again."""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        ecs, store = RollingEcs(), HistoryStore(f"sqlite:///{Path(scratch) / 'h.db'}")
        desired = pinned(Path(scratch) / "d", 2)
        one_pass(desired, ecs, store)
        for step in steps:
            in_progress = ecs.deployments[0].get("rolloutState") == "IN_PROGRESS"
            if step == "settle" and in_progress:
                ecs.settle()
            elif step.startswith("fail") and in_progress and len(ecs.deployments) > 1:
                ecs.fail(forget=step == "fail_forget")
            one_pass(desired, ecs, store)
        assert len(ecs.updates) == 1
        store.close()
