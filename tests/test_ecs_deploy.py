"""Deployments from git: ECSService `taskDefinitionFrom` (issue 13 items 2 and 5), in-process moto.

One pass with the registry's reconcilers registers the declared content and moves the service
to that revision (ECSService's worker runs after ECSTaskDefinition's); a revert finds the
older revision by its digest and registers nothing. `plan` shows both without sending. A
service that is not ACTIVE is an error and nothing is sent: moto keeps every service ACTIVE
until it is deleted, so DRAINING is a stubbed DescribeServices response.
"""

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from moto import mock_aws

from homeostat.desired_state.loading import load_directory
from homeostat.desired_state.state import DesiredState, InvalidDesiredState
from homeostat.operator.execution import Executor
from homeostat.operator.history import HistoryStore
from homeostat.operator.passes import observe_and_diff, run_pass
from homeostat.operator.statuses import State
from homeostat.reconcilers.ecs_service_reconciler import ECSServiceReconciler
from homeostat.reconcilers.registry import default_reconcilers, kind_table

from .conftest import CountingClients

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
CLUSTER = "prod"
FAMILY = "shop-api"


def write(directory: Path, image: str, service_spec: str = "taskDefinitionFrom: api") -> DesiredState:
    directory.mkdir(parents=True, exist_ok=True)
    content = {"family": FAMILY, "containerDefinitions": [{"name": "api", "image": image, "memory": 128}]}
    (directory / "api.json").write_text(json.dumps(content))
    (directory / "api.yaml").write_text(
        "apiVersion: homeostat/v1\nkind: ECSTaskDefinition\nmetadata: {name: api}\n"
        f"spec: {{family: {FAMILY}, definitionFile: api.json}}\n---\n"
        "apiVersion: homeostat/v1\nkind: ECSService\nmetadata: {name: api}\n"
        f"spec:\n  cluster: {CLUSTER}\n  service: api\n  desiredCount: 1\n  {service_spec}\n"
    )
    return load_directory(directory, kinds=kind_table())


@pytest.fixture
def clients(counting_clients: CountingClients) -> Iterator[CountingClients]:
    with mock_aws():
        ecs = counting_clients.client("ecs")
        ecs.create_cluster(clusterName=CLUSTER)
        ecs.register_task_definition(
            family=FAMILY, containerDefinitions=[{"name": "api", "image": "by-hand", "memory": 128}]
        )
        ecs.create_service(cluster=CLUSTER, serviceName="api", taskDefinition=f"{FAMILY}:1", desiredCount=1)
        counting_clients.log.calls.clear()
        yield counting_clients


def running(clients: CountingClients) -> str:
    [item] = clients.client("ecs").describe_services(cluster=CLUSTER, services=["api"])["services"]
    return str(item["taskDefinition"]).rsplit("/", 1)[-1]


PASSES = itertools.count(1)


def one_pass(desired: DesiredState, clients: CountingClients, store: HistoryStore, reconcilers: Any) -> Any:
    """One pass at an instant of its own (the catalog keeps a family's listing for one pass)."""
    now = NOW + timedelta(seconds=next(PASSES))
    executor = Executor(store, None, structlog.get_logger(), lambda: now)
    return run_pass(desired, reconcilers, clients, executor, clock=lambda: now, dry_run=False)


def test_one_pass_registers_and_moves_the_service_and_a_revert_registers_nothing(
    clients: CountingClients, tmp_path: Path
) -> None:
    store = HistoryStore(f"sqlite:///{tmp_path / 'h.db'}")
    reconcilers = default_reconcilers()
    v1 = one_pass(write(tmp_path / "d", "api:v1"), clients, store, reconcilers)
    assert [(s.kind, s.state) for s in v1.statuses] == [
        ("ECSTaskDefinition", State.FIXED),
        ("ECSService", State.FIXED),
    ]
    assert running(clients) == f"{FAMILY}:2"
    # The service found the revision registered in its pass without a listing or a describe of its own.
    first = clients.log.count()
    assert (first["ListTaskDefinitions"], first["DescribeTaskDefinition"]) == (1, 1)  # :1, by hand
    assert (first["RegisterTaskDefinition"], first["UpdateService"]) == (1, 1)
    v2 = one_pass(write(tmp_path / "d", "api:v2"), clients, store, reconcilers)
    assert [s.state for s in v2.statuses] == [State.FIXED, State.FIXED]
    assert running(clients) == f"{FAMILY}:3"
    clients.log.calls.clear()

    reverted = one_pass(write(tmp_path / "d", "api:v1"), clients, store, reconcilers)

    assert [s.state for s in reverted.statuses] == [State.IN_SYNC, State.FIXED]
    assert running(clients) == f"{FAMILY}:2"
    calls = clients.log.count()
    assert calls["RegisterTaskDefinition"] == 0
    assert calls["DescribeTaskDefinition"] == 0  # every revision was described once, in earlier passes
    assert calls["ListTaskDefinitions"] == 1  # one listing of the family per pass, for both kinds
    [update] = clients.log.of("UpdateService")
    assert update["taskDefinition"].endswith(f":task-definition/{FAMILY}:2")
    [move] = [r for r in reverted.records if r.kind == "ECSService"]
    assert (
        move.before["taskDefinition"].rsplit("/", 1)[-1],
        move.after["taskDefinition"].rsplit("/", 1)[-1],
    ) == (
        f"{FAMILY}:3",
        f"{FAMILY}:2",
    )
    again = one_pass(write(tmp_path / "d", "api:v1"), clients, store, reconcilers)
    assert [s.state for s in again.statuses] == [State.IN_SYNC, State.IN_SYNC]


def test_plan_shows_the_revision_it_would_register_and_the_service_it_would_move(
    clients: CountingClients, tmp_path: Path
) -> None:
    planned, _ = observe_and_diff(write(tmp_path / "d", "api:v1"), default_reconcilers(), clients, NOW)
    plans = {(r.kind, r.name): plan for _, r, plan in planned}
    [register] = plans[("ECSTaskDefinition", "api")].actions
    assert register.after["revision"] == f"{FAMILY}:(new)"
    assert "api:v1" in register.reason
    [move] = plans[("ECSService", "api")].actions
    assert move.after["taskDefinition"].startswith(f"{FAMILY}:(the revision ECSTaskDefinition api registers")
    assert clients.log.count()["RegisterTaskDefinition"] == clients.log.count()["UpdateService"] == 0
    # Were such an action applied (a registration that failed in this pass), it is refused, not sent.
    [result] = ECSServiceReconciler().apply([move], clients)
    assert (
        result.error == "not sent: ECSTaskDefinition api has no ACTIVE revision holding its declared content"
    )
    assert clients.log.count()["UpdateService"] == 0


def test_task_definition_and_task_definition_from_are_exclusive(tmp_path: Path) -> None:
    with pytest.raises(InvalidDesiredState) as caught:
        write(tmp_path / "d", "x", service_spec=f"taskDefinitionFrom: api\n  taskDefinition: {FAMILY}:1")
    assert [str(e) for e in caught.value.errors] == [
        "api.yaml:9: spec: declare either taskDefinition or taskDefinitionFrom, not both"
    ]


def test_an_unknown_task_definition_from_is_a_cross_document_error_naming_the_line(tmp_path: Path) -> None:
    with pytest.raises(InvalidDesiredState) as caught:
        write(tmp_path / "d", "x", service_spec="taskDefinitionFrom: worker")
    assert [str(e) for e in caught.value.errors] == [
        "api.yaml:6: spec.taskDefinitionFrom: ECSService 'api' runs ECSTaskDefinition 'worker', "
        "which is not declared"
    ]


class DrainingEcs:
    """A stubbed ECS client: DescribeServices answers as AWS does for a service being deleted
    (moto never shows DRAINING); any mutation is a test failure."""

    def __init__(self, status: str) -> None:
        self.status = status
        self.updates: list[dict[str, Any]] = []

    def describe_services(self, cluster: str, services: list[str]) -> dict[str, Any]:
        arn = f"arn:aws:ecs:us-east-1:123456789012:task-definition/{FAMILY}:1"
        return {
            "services": [
                {"serviceName": s, "status": self.status, "desiredCount": 0, "taskDefinition": arn}
                for s in services
            ],
            "failures": [],
        }

    def update_service(self, **params: Any) -> None:
        self.updates.append(params)


class StubClients:
    def __init__(self, ecs: DrainingEcs) -> None:
        self.ecs = ecs

    def client(self, service: str) -> Any:
        if service == "ecs":
            return self.ecs
        return type(
            "NoTargets", (), {"describe_scalable_targets": lambda self, **_: {"ScalableTargets": []}}
        )()


@pytest.mark.parametrize("status", ["DRAINING", "INACTIVE"])
def test_a_service_that_is_not_active_is_an_error_and_nothing_is_sent(tmp_path: Path, status: str) -> None:
    desired = write(tmp_path / "d", "x", service_spec=f"taskDefinition: {FAMILY}:2")
    [service] = [r for r in desired.resources if r.kind == "ECSService"]
    ecs = DrainingEcs(status)
    reconciler = ECSServiceReconciler()
    observed = reconciler.observe([service], desired, StubClients(ecs), NOW)
    plan = reconciler.diff(service, observed["api"], NOW)
    assert plan.actions == ()
    assert plan.error is not None
    assert status in plan.error
    assert ecs.updates == []


def test_both_ecs_kinds_of_one_wiring_share_one_catalog_and_a_new_wiring_starts_empty() -> None:
    """Each revision is described once per process: one catalog for both kinds of a wiring, and no
    module-level cache (a second wiring, a test or a process, gets its own)."""
    first, second = default_reconcilers(), default_reconcilers()
    catalogs = [
        {type(r).__name__: r.catalog for r in wiring if hasattr(r, "catalog")} for wiring in (first, second)
    ]
    assert set(catalogs[0]) == {"ECSTaskDefinitionReconciler", "ECSServiceReconciler"}
    assert catalogs[0]["ECSTaskDefinitionReconciler"] is catalogs[0]["ECSServiceReconciler"]
    assert catalogs[0]["ECSServiceReconciler"] is not catalogs[1]["ECSServiceReconciler"]


def test_the_demo_deploys_api_by_a_commit_of_its_image_and_then_reverts_it(tmp_path: Path) -> None:
    """The demo's move edits the example task definition file: a new digest, then the old one again."""
    import shutil
    import threading

    from homeostat.operator.demo_stack import Chaos
    from homeostat.reconcilers.task_definitions import digest_of
    from tests.conftest import EXAMPLES

    shutil.copytree(EXAMPLES, tmp_path / "d")

    def digest() -> str:
        [td] = [
            r for r in load_directory(tmp_path / "d", kinds=kind_table()) if r.kind == "ECSTaskDefinition"
        ]
        return digest_of(td.manifest.spec.content())

    chaos = Chaos("http://127.0.0.1:1", threading.Event(), tmp_path / "d")
    original = digest()
    chaos.deploy_api()
    deployed = digest()
    chaos.deploy_api()
    assert deployed != original
    assert digest() == original


def test_the_demo_holds_web_with_a_reason_and_a_hold_that_ends_by_itself(tmp_path: Path) -> None:
    """The demo's hold edits services.yaml: web is held until the given instant, the others are not,
    and the next hold replaces the previous one (the directory stays valid)."""
    import shutil
    from datetime import UTC, datetime

    from homeostat.desired_state.models import Hold
    from homeostat.operator.demo_stack import with_hold
    from tests.conftest import EXAMPLES

    shutil.copytree(EXAMPLES, tmp_path / "d")
    services = tmp_path / "d" / "services.yaml"
    first, second = datetime(2026, 12, 1, 11, 0, tzinfo=UTC), datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    services.write_text(with_hold(services.read_text(), first, "INC-1: held"))
    services.write_text(with_hold(services.read_text(), second, "INC-2: held again"))
    held = {
        r.name: r.manifest.spec.suspend
        for r in load_directory(tmp_path / "d", kinds=kind_table())
        if r.kind == "ECSService"
    }
    assert held == {"api": False, "web": Hold(until=second, reason="INC-2: held again"), "worker": False}
    with pytest.raises(ValueError, match="no suspend block"):
        with_hold("spec: {}\n", first, "x")


def test_a_failed_registration_moves_nothing_but_the_count_drift_is_still_fixed(
    clients: CountingClients, tmp_path: Path
) -> None:
    """AWS (here botocore) refuses the definition: the service is not moved to a guessed revision,
    its move is refused as not sent, and its count drift is fixed by its own UpdateService."""
    desired = write(tmp_path / "d", "api:v1")
    (tmp_path / "d" / "api.json").write_text(
        json.dumps({"containerDefinitions": [{"name": "api", "image": "x", "memory": 128}], "noSuchKey": 1})
    )
    desired = load_directory(tmp_path / "d", kinds=kind_table())
    clients.client("ecs").update_service(cluster=CLUSTER, service="api", desiredCount=3)
    clients.log.calls.clear()
    store = HistoryStore(f"sqlite:///{tmp_path / 'h.db'}")

    report = one_pass(desired, clients, store, default_reconcilers())

    assert [(s.kind, s.state) for s in report.statuses] == [
        ("ECSTaskDefinition", State.ERROR),
        ("ECSService", State.ERROR),
    ]
    [update] = clients.log.of("UpdateService")
    assert update == {"cluster": CLUSTER, "service": "api", "desiredCount": 1}
    assert running(clients) == f"{FAMILY}:1"
    outcomes = [(r.kind, str(r.outcome), (r.error or "")[:30]) for r in report.records]
    assert outcomes == [
        ("ECSTaskDefinition", "failed", "ParamValidationError: Paramete"),
        ("ECSService", "applied", ""),
        ("ECSService", "failed", "not sent: ECSTaskDefinition ap"),
    ]
