"""ECSService `redeployToken` (issue 13 item 3): one forced new deployment per new value, ever.

The last applied value is read back from the history database, so a restart (a new process,
a new reconciler) never redeploys; `plan` has no history and says "would redeploy". The
passes use the rollout tests' fake ECS client (moto accepts forceNewDeployment but shows no
deployment for it); the end-to-end test runs the real CLI twice against moto's server.
"""

import json
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from homeostat.desired_state.loading import load_directory
from homeostat.desired_state.state import DesiredState
from homeostat.operator.execution import Executor
from homeostat.operator.history import HistoryStore
from homeostat.operator.passes import run_pass
from homeostat.operator.records import ActionRecord
from homeostat.reconcilers.actions import Outcome
from homeostat.reconcilers.ecs_service import ECSServiceSpec
from homeostat.reconcilers.ecs_service_diff import NOT_REMEMBERED, redeploy
from homeostat.reconcilers.ecs_service_reconciler import ECSServiceReconciler
from homeostat.reconcilers.registry import kind_table
from homeostat.reconcilers.rollouts import Recall, Remembered
from tests.conftest import MotoServer, run_cli
from tests.test_rollouts import NOW, Clients, RollingEcs


def spec(token: str | None) -> ECSServiceSpec:
    return ECSServiceSpec(cluster="prod", service="api", redeployToken=token)


@given(
    st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(1, 4)), max_size=8).map(
        lambda runs: [r for i, r in enumerate(runs) if i == 0 or r[0] != runs[i - 1][0]]
    )
)
def test_a_new_token_always_redeploys_exactly_once(runs: list[tuple[str, int]]) -> None:
    """Passes that see a token for a while, then another: one redeploy per run of a value."""
    applied: str | None = None
    sent: list[str] = []
    for token, passes in runs:
        for _ in range(passes):
            for action in redeploy("api", spec(token), applied):
                assert action.params["forceNewDeployment"] is True
                applied = action.after["redeployToken"]
                sent.append(token)
    assert sent == [token for token, _ in runs]


def test_no_token_or_the_applied_token_redeploys_nothing_and_plan_says_would() -> None:
    assert redeploy("api", spec(None), "a") == ()
    assert redeploy("api", spec("a"), "a") == ()
    [unknown] = redeploy("api", spec("a"), NOT_REMEMBERED)
    assert "would redeploy" in unknown.reason


def with_token(directory: Path, token: str) -> DesiredState:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "api.yaml").write_text(
        "apiVersion: homeostat/v1\nkind: ECSService\nmetadata: {name: api}\n"
        f"spec: {{cluster: prod, service: api, redeployToken: '{token}'}}\n"
    )
    return load_directory(directory, kinds=kind_table())


def passes(
    desired: DesiredState, ecs: RollingEcs, store: HistoryStore, count: int, recall: Recall | None = None
) -> None:
    """`count` passes, recalling through `recall` (the store itself by default)."""
    for _ in range(count):  # each pass a new reconciler: a restart remembers through the history only
        executor = Executor(store, None, structlog.get_logger(), lambda: NOW)
        run_pass(
            desired,
            [ECSServiceReconciler(recall=recall or store)],
            Clients(ecs),
            executor,
            clock=lambda: NOW,
            dry_run=False,
        )


def test_a_token_redeploys_once_across_restarts_and_a_new_token_once_more(tmp_path: Path) -> None:
    ecs, store = RollingEcs(), HistoryStore(f"sqlite:///{tmp_path / 'h.db'}")
    passes(with_token(tmp_path / "d", "rotate-1"), ecs, store, 3)
    assert ecs.updates == [{"cluster": "prod", "service": "api", "forceNewDeployment": True}]
    passes(with_token(tmp_path / "d", "rotate-2"), ecs, store, 3)
    assert len(ecs.updates) == 2


def test_an_interrupted_redeploy_counts_as_sent(tmp_path: Path) -> None:
    """A process killed while AWS had the call leaves an `interrupted` row: never sent twice."""
    store = HistoryStore(f"sqlite:///{tmp_path / 'h.db'}")
    store.add(
        [
            ActionRecord(
                time=NOW - timedelta(minutes=1),
                kind="ECSService",
                name="api",
                action="redeploy",
                target="prod/api",
                outcome=Outcome.INTERRUPTED,
                before={"redeployToken": None},
                after={"redeployToken": "rotate-1"},
                reason="redeploy",
                error=None,
                revision="r",
                dry_run=False,
            )
        ]
    )
    ecs = RollingEcs()
    passes(with_token(tmp_path / "d", "rotate-1"), ecs, store, 1)
    assert ecs.updates == []


@pytest.mark.e2e
def test_run_once_twice_with_a_redeploy_token_redeploys_once(moto_server: MotoServer, tmp_path: Path) -> None:
    ecs = moto_server.client("ecs")
    ecs.create_cluster(clusterName="prod")
    ecs.register_task_definition(
        family="api", containerDefinitions=[{"name": "api", "image": "a", "memory": 128}]
    )
    ecs.create_service(cluster="prod", serviceName="api", taskDefinition="api:1", desiredCount=1)
    directory = tmp_path / "d"
    with_token(directory, "2026-12-01-rotate-secrets")
    env = moto_server.env(
        HOMEOSTAT_DESIRED_STATE=str(directory),
        HOMEOSTAT_HISTORY=f"sqlite:///{tmp_path / 'history.db'}",
        HOMEOSTAT_LOG_FORMAT="json",
    )

    def cli(*args: str) -> Any:
        result = run_cli(*args, env=env, cwd=tmp_path, timeout=60)
        assert "Traceback" not in result.stderr, result.stderr
        return result

    plan = cli("plan")
    assert "would redeploy" in plan.stdout
    assert cli("run", "--once").returncode == 0
    assert cli("run", "--once").returncode == 0
    rows = [json.loads(line) for line in cli("history", "--json").stdout.splitlines() if line.strip()]
    redeploys = [r for r in rows if r["action"] == "redeploy"]
    assert [(r["outcome"], r["after"]) for r in redeploys] == [
        ("applied", {"redeployToken": "2026-12-01-rotate-secrets"})
    ]


class ManyServices(RollingEcs):
    """Every asked-for service exists, runs revision 1 and has its declared count."""

    def describe_services(self, cluster: str, services: list[str]) -> dict[str, Any]:
        answer = super().describe_services(cluster, services)
        (item,) = answer["services"]
        return {"services": [dict(item, serviceName=name) for name in services], "failures": []}


class CountingRecall:
    def __init__(self, store: HistoryStore) -> None:
        self.store, self.calls = store, 0

    def remembered(
        self, kind: str, names: Sequence[str], action: str, outcomes: Sequence[str]
    ) -> Mapping[str, list[Remembered]]:
        self.calls += 1
        return self.store.remembered(kind, names, action, outcomes)


def test_a_pass_recalls_a_group_of_services_in_three_queries_not_per_service(tmp_path: Path) -> None:
    """The redeployToken and rollout memory of 40 services (tokens, pins) are read in one
    batched query each; the tokens already applied redeploy nothing, the new ones once."""
    directory = tmp_path / "d"
    directory.mkdir()
    for i in range(40):
        (directory / f"s{i}.yaml").write_text(
            f"apiVersion: homeostat/v1\nkind: ECSService\nmetadata: {{name: s{i}}}\n"
            f"spec: {{cluster: prod, service: s{i}, desiredCount: 1, taskDefinition: 'shop-api:1', "
            f"redeployToken: t{i}}}\n"
        )
    desired = load_directory(directory, kinds=kind_table())
    store = HistoryStore(f"sqlite:///{tmp_path / 'h.db'}")
    ecs, recall = ManyServices(), CountingRecall(store)
    passes(desired, ecs, store, 2, recall)
    assert recall.calls == 2 * 3
    assert sorted(u["service"] for u in ecs.updates) == sorted(f"s{i}" for i in range(40))
