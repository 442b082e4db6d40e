"""Specification of the ECSService reconciler against moto (in-process `mock_aws`).

Counts every AWS call through botocore's before-call hook (`clients`):
moto accepts more than 10 services per DescribeServices, so the batch limit is
asserted on the calls themselves. Task definitions pinned in manifests are
registered first (moto's UpdateService half-applies an unknown one).
"""

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws

from homeostat.desired_state.identifiers import Revision
from homeostat.desired_state.state import DesiredState, Resource, Source
from homeostat.reconcilers.actions import ApplyResult, ObserveError, Plan
from homeostat.reconcilers.ecs_service import ECSAction, ECSService
from homeostat.reconcilers.ecs_service_diff import ServiceObservation
from homeostat.reconcilers.ecs_service_reconciler import ECSServiceReconciler
from homeostat.reconcilers.ecs_services import DESCRIBE_SERVICES_BATCH

from .conftest import CallLog, CountingClients

CLUSTER = "prod"
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
RECONCILER = ECSServiceReconciler()


class ApiParamsLog(CallLog):
    """Logs the API parameters of each call (as the caller passed them).

    conftest's CallLog reads the serialized request body at before-call, which
    is a dict only for query-protocol services; ECS and Application Auto
    Scaling speak JSON, so their parameters are taken from provide-client-params.
    """

    def hook(self, model: Any = None, params: Any = None, **_: Any) -> None:
        self.calls.append((model.service_model.service_name, model.name, dict(params or {})))

    def attach(self, client: Any) -> Any:
        client.meta.events.register("provide-client-params.*.*", self.hook)
        return client


@pytest.fixture
def clients(counting_clients: CountingClients) -> Iterator[CountingClients]:
    """clients under mock_aws, logging API parameters."""
    counting_clients.log = ApiParamsLog()
    with mock_aws():
        yield counting_clients


def seed_cluster(
    clients: CountingClients, services: dict[str, tuple[int, str]], cluster: str = CLUSTER
) -> None:
    """Create a cluster with services {name: (desiredCount, family:revision)}; registers the families."""
    ecs = clients.client("ecs")
    ecs.create_cluster(clusterName=cluster)
    families: dict[str, int] = {}
    for _, task in services.values():
        family, revision = task.split(":")
        families[family] = max(families.get(family, 0), int(revision))
    for family, revisions in families.items():
        for _ in range(revisions):
            ecs.register_task_definition(
                family=family, containerDefinitions=[{"name": "app", "image": "nginx", "memory": 128}]
            )
    for name, (count, task) in services.items():
        ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=task, desiredCount=count)
    clients.log.calls.clear()


def register_target(clients: CountingClients, service: str, low: int, high: int) -> None:
    clients.client("application-autoscaling").register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId=f"service/{CLUSTER}/{service}",
        ScalableDimension="ecs:service:DesiredCount",
        MinCapacity=low,
        MaxCapacity=high,
    )
    clients.log.calls.clear()


def manifest(name: str, cluster: str = CLUSTER, **spec: Any) -> Resource:
    body = {"cluster": cluster, "service": name, **spec}
    model = ECSService.model_validate(
        {"apiVersion": "homeostat/v1", "kind": "ECSService", "metadata": {"name": name}, "spec": body}
    )
    return Resource(model, Source("services.yaml", 1))


def desired_state(resources: Sequence[Resource]) -> DesiredState:
    return DesiredState(Revision("test"), Path(), tuple(resources))


def plan_all(resources: Sequence[Resource], clients: CountingClients) -> dict[str, Plan]:
    observed = RECONCILER.observe(resources, desired_state(resources), clients, NOW)
    return {r.name: RECONCILER.diff(r, observed[r.name], NOW) for r in resources}


def reconcile(
    resources: Sequence[Resource], clients: CountingClients
) -> tuple[dict[str, Plan], list[ApplyResult]]:
    """One pass: observe once, diff each, apply every non-conflicted action (as the executor does)."""
    plans = plan_all(resources, clients)
    actions = [a for p in plans.values() for a in p.actions if a.conflict is None]
    return plans, RECONCILER.apply(actions, clients) if actions else []


def live_services(clients: CountingClients, names: list[str], cluster: str = CLUSTER) -> dict[str, Any]:
    ecs = clients.client("ecs")
    found = {}
    for start in range(0, len(names), DESCRIBE_SERVICES_BATCH):
        batch = names[start : start + DESCRIBE_SERVICES_BATCH]
        for item in ecs.describe_services(cluster=cluster, services=batch)["services"]:
            found[item["serviceName"]] = item
    return found


def test_25_services_5_drifted_cost_3_describes_and_5_updates(clients: CountingClients) -> None:
    """With 25 services in one cluster and 5 drifted, a pass makes exactly 3 DescribeServices
    (none carrying more than 10 services) and 5 UpdateService calls, and fixes all 5."""
    names = [f"svc-{i:02d}" for i in range(25)]
    live = dict.fromkeys(names, (2, "app:1"))
    live["svc-03"] = (1, "app:1")  # count drift
    live["svc-07"] = (5, "app:1")  # count drift
    live["svc-11"] = (2, "app:2")  # task definition drift
    live["svc-19"] = (0, "app:2")  # both
    live["svc-24"] = (3, "app:1")  # count drift
    seed_cluster(clients, live)
    resources = [manifest(name, desiredCount=2, taskDefinition="app:1") for name in names]

    plans, results = reconcile(resources, clients)

    calls = clients.log.count()
    assert calls["DescribeServices"] == 3
    assert calls["UpdateService"] == 5
    assert calls["DescribeScalableTargets"] == 1
    assert sum(calls.values()) == 9
    describes = clients.log.of("DescribeServices")
    assert all(len(params["services"]) <= DESCRIBE_SERVICES_BATCH for params in describes)
    assert sorted(s for params in describes for s in params["services"]) == names
    assert sorted(n for n, p in plans.items() if p.actions) == [
        "svc-03",
        "svc-07",
        "svc-11",
        "svc-19",
        "svc-24",
    ]
    assert all(result.error is None for result in results)

    after = live_services(clients, names)
    assert {n: s["desiredCount"] for n, s in after.items()} == dict.fromkeys(names, 2)
    assert {s["taskDefinition"].rsplit("/", 1)[-1] for s in after.values()} == {"app:1"}
    assert all(p.in_sync for p in plan_all(resources, clients).values())


def test_services_are_described_per_cluster(clients: CountingClients) -> None:
    """Services in two clusters are described in one batch per cluster."""
    seed_cluster(clients, {"a": (1, "app:1"), "b": (1, "app:1")}, cluster="one")
    seed_cluster(clients, {"c": (1, "app:1")}, cluster="two")
    resources = [manifest("a", "one"), manifest("b", "one"), manifest("c", "two")]
    plans = plan_all(resources, clients)
    assert all(p.in_sync for p in plans.values())
    describes = clients.log.of("DescribeServices")
    assert sorted((p["cluster"], tuple(p["services"])) for p in describes) == [
        ("one", ("a", "b")),
        ("two", ("c",)),
    ]


def test_observation_reports_count_and_task_definition_arn(clients: CountingClients) -> None:
    """observe returns the live count and the full task definition ARN of each service."""
    seed_cluster(clients, {"api": (3, "api:2")})
    resource = manifest("api", desiredCount=3)
    observed = RECONCILER.observe([resource], desired_state([resource]), clients, NOW)["api"]
    assert isinstance(observed, ServiceObservation)
    assert observed.desired_count == 3
    assert observed.task_definition.endswith(":task-definition/api:2")
    assert observed.scalable_target is None


def test_missing_cluster_is_an_error_for_its_resources_alone(clients: CountingClients) -> None:
    """A cluster that does not exist fails its own services; services elsewhere are reconciled."""
    seed_cluster(clients, {"api": (1, "app:1")})
    resources = [
        manifest("api", desiredCount=2),
        manifest("ghost", cluster="no-such-cluster", desiredCount=1),
    ]
    plans, results = reconcile(resources, clients)
    assert plans["ghost"].error is not None
    assert "no-such-cluster" in plans["ghost"].error
    assert plans["ghost"].actions == ()
    assert plans["api"].error is None
    assert [r.action.name for r in results] == ["api"]
    assert live_services(clients, ["api"])["api"]["desiredCount"] == 2


def test_missing_service_is_an_error_for_that_resource_alone(clients: CountingClients) -> None:
    """A service absent from its cluster is an error naming it; its neighbours in the batch are fixed."""
    seed_cluster(clients, {"api": (1, "app:1"), "web": (1, "app:1")})
    resources = [
        manifest("api", desiredCount=2),
        manifest("gone", desiredCount=1),
        manifest("web", desiredCount=3),
    ]
    plans, results = reconcile(resources, clients)
    assert plans["gone"].error is not None
    assert "gone" in plans["gone"].error
    assert "not found" in plans["gone"].error
    assert clients.log.count()["DescribeServices"] == 1
    assert sorted(r.action.name for r in results) == ["api", "web"]
    after = live_services(clients, ["api", "web"])
    assert (after["api"]["desiredCount"], after["web"]["desiredCount"]) == (2, 3)


def test_deleted_service_is_an_error(clients: CountingClients) -> None:
    """An INACTIVE (deleted) service is not reconciled: it is an error, never re-created."""
    seed_cluster(clients, {"api": (0, "app:1")})
    clients.client("ecs").delete_service(cluster=CLUSTER, service="api", force=True)
    clients.log.calls.clear()
    plans, results = reconcile([manifest("api", desiredCount=2)], clients)
    assert plans["api"].error is not None
    assert results == []
    assert clients.log.count()["UpdateService"] == 0


def test_autoscaled_service_with_desired_count_is_a_conflict_and_unchanged(
    clients: CountingClients,
) -> None:
    """Declaring desiredCount for an autoscaled service is a Conflict: no call changes anything."""
    seed_cluster(clients, {"worker": (3, "app:1")})
    register_target(clients, "worker", 2, 8)
    plans, results = reconcile([manifest("worker", desiredCount=6, taskDefinition="app:1")], clients)
    plan = plans["worker"]
    assert plan.has_conflict
    assert plan.error is None
    assert results == []
    calls = clients.log.count()
    assert calls["UpdateService"] == 0
    assert calls["RegisterScalableTarget"] == 0
    assert live_services(clients, ["worker"])["worker"]["desiredCount"] == 3


def test_autoscaling_bounds_are_reconciled_on_the_target(clients: CountingClients) -> None:
    """Differing autoscaling bounds are set with one RegisterScalableTarget; the count is untouched."""
    seed_cluster(clients, {"worker": (3, "app:1")})
    register_target(clients, "worker", 1, 4)
    resource = manifest("worker", autoscaling={"minCapacity": 2, "maxCapacity": 8})
    plans, results = reconcile([resource], clients)
    assert [a.action for a in plans["worker"].actions] == [ECSAction.UPDATE_SCALABLE_TARGET]
    assert all(r.error is None for r in results)
    calls = clients.log.count()
    assert calls["RegisterScalableTarget"] == 1
    assert calls["UpdateService"] == 0
    (register,) = clients.log.of("RegisterScalableTarget")
    assert (register["ResourceId"], register["MinCapacity"], register["MaxCapacity"]) == (
        "service/prod/worker",
        2,
        8,
    )
    target = clients.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="ecs", ResourceIds=["service/prod/worker"]
    )["ScalableTargets"][0]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 8)
    assert plan_all([resource], clients)["worker"].in_sync


def test_scalable_targets_are_read_once_for_all_services(clients: CountingClients) -> None:
    """One DescribeScalableTargets call covers every declared service, scoped to their resource ids."""
    seed_cluster(clients, {"a": (1, "app:1"), "b": (1, "app:1")})
    plan_all([manifest("a"), manifest("b")], clients)
    (call,) = clients.log.of("DescribeScalableTargets")
    assert call["ResourceIds"] == ["service/prod/a", "service/prod/b"]
    assert call["ServiceNamespace"] == "ecs"


def test_unreadable_scalable_targets_fail_closed(
    clients: CountingClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If scalable targets cannot be read, no service is changed: the autoscaler might own the count."""
    seed_cluster(clients, {"api": (1, "app:1")})

    def refuse(**_: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "DescribeScalableTargets"
        )

    monkeypatch.setattr(clients.client("application-autoscaling"), "describe_scalable_targets", refuse)
    plans, results = reconcile([manifest("api", desiredCount=5)], clients)
    assert plans["api"].error is not None
    assert "AccessDeniedException" in plans["api"].error
    assert results == []
    assert live_services(clients, ["api"])["api"]["desiredCount"] == 1


def test_a_failed_update_is_that_actions_error(clients: CountingClients) -> None:
    """An UpdateService that AWS rejects is reported on its action; the other actions still apply."""
    seed_cluster(clients, {"api": (1, "app:1"), "web": (1, "app:1")})
    resources = [manifest("api", taskDefinition="unregistered:1"), manifest("web", desiredCount=2)]
    plans, results = reconcile(resources, clients)
    assert all(p.error is None for p in plans.values())
    outcome = {r.action.name: r.error for r in results}
    assert outcome["api"] is not None
    assert "UpdateService failed" in outcome["api"]
    assert outcome["web"] is None


def test_observe_errors_are_values(clients: CountingClients) -> None:
    """Every declared resource gets an observation or an ObserveError, never an exception."""
    resources = [manifest("api", "nowhere", desiredCount=1)]
    observed = RECONCILER.observe(resources, desired_state(resources), clients, NOW)
    assert isinstance(observed["api"], ObserveError)


def test_pinned_task_definition_is_deployed(clients: CountingClients) -> None:
    """A drifted task definition pin is applied with UpdateService and then reads back in sync."""
    seed_cluster(clients, {"api": (2, "api:3")})
    resource = manifest("api", taskDefinition="api:2")
    plans, results = reconcile([resource], clients)
    assert [a.action for a in plans["api"].actions] == [ECSAction.UPDATE_SERVICE]
    assert results[0].error is None
    (update,) = clients.log.of("UpdateService")
    assert update == {"cluster": CLUSTER, "service": "api", "taskDefinition": "api:2"}
    # moto stores the pin as given ("api:2"); AWS would return the ARN: compare the last part.
    assert live_services(clients, ["api"])["api"]["taskDefinition"].rsplit("/", 1)[-1] == "api:2"
    assert plan_all([resource], clients)["api"].in_sync


def test_the_scalable_target_batches_are_read_concurrently_and_a_failed_one_fails_closed() -> None:
    """Two batches of 50 resource ids are in flight together (each waits for the other: read one
    after the other, they would time out); one failing batch makes the whole read an error."""
    import threading

    from botocore.exceptions import ClientError

    from homeostat.reconcilers.ecs_services import SCALABLE_TARGETS_BATCH, scalable_targets

    together = threading.Barrier(2, timeout=30)
    ids = [f"service/prod/s{i:03d}" for i in range(SCALABLE_TARGETS_BATCH + 1)]

    class Targets:
        fail = False

        def describe_scalable_targets(self, **params: Any) -> dict[str, Any]:
            together.wait()
            if self.fail and len(params["ResourceIds"]) == 1:
                raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "Describe")
            first = params["ResourceIds"][0]
            return {"ScalableTargets": [{"ResourceId": first, "MinCapacity": 1, "MaxCapacity": 3}]}

    client = Targets()
    read = scalable_targets(client, ids)
    assert read.error is None
    assert sorted(read.targets) == [ids[0], ids[SCALABLE_TARGETS_BATCH]]
    client.fail = True
    read = scalable_targets(client, ids)
    assert read.targets == {}
    assert read.error is not None
    assert "ThrottlingException" in read.error


@given(st.integers(1, 5000), st.one_of(st.none(), st.integers(0, 5000)))
def test_the_whole_namespace_is_listed_only_when_that_is_fewer_calls(ids: int, listed: int | None) -> None:
    """Listing the region's targets (a page per 50) is chosen only when it is fewer calls than
    reading the services by id (a call per 50), judged by the last listing (none: one page)."""
    from homeostat.reconcilers.ecs_services import SCALABLE_TARGETS_BATCH, list_whole_namespace

    by_id = -(-ids // SCALABLE_TARGETS_BATCH)
    pages = -(-max(listed or 0, 1) // SCALABLE_TARGETS_BATCH)
    assert list_whole_namespace(ids, listed) == (pages < by_id)
    if ids <= SCALABLE_TARGETS_BATCH:
        assert not list_whole_namespace(ids, listed), "one call by id is never beaten"


def test_a_large_group_with_few_autoscaled_services_lists_the_region_in_one_call(
    clients: CountingClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    """120 services (3 calls by id), 2 of them autoscaled: one listing of the region's ECS targets,
    kept to the group (a target of another cluster is not the group's); the autoscaled service
    that declares desiredCount is a Conflict, as when read by id. A region found to hold more
    targets than the group needs calls for is read by id at the next pass."""
    names = [f"s{i:03d}" for i in range(120)]
    seed_cluster(clients, dict.fromkeys(names, (1, "app:1")))
    register_target(clients, "s007", 1, 4)
    register_target(clients, "s100", 1, 4)
    ecs = clients.client("ecs")
    ecs.create_cluster(clusterName="elsewhere")  # moto registers targets of existing services only
    ecs.create_service(cluster="elsewhere", serviceName="s007", taskDefinition="app:1", desiredCount=1)
    autoscaling = clients.client("application-autoscaling")
    autoscaling.register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId="service/elsewhere/s007",
        ScalableDimension="ecs:service:DesiredCount",
        MinCapacity=1,
        MaxCapacity=2,
    )
    clients.log.calls.clear()
    resources = [manifest(n, desiredCount=1) for n in names]
    reconciler = ECSServiceReconciler()
    observed = reconciler.observe(resources, desired_state(resources), clients, NOW)
    (call,) = clients.log.of("DescribeScalableTargets")
    assert "ResourceIds" not in call
    found = {n for n, o in observed.items() if isinstance(o, ServiceObservation) and o.scalable_target}
    assert found == {"s007", "s100"}
    plans = {r.name: reconciler.diff(r, observed[r.name], NOW) for r in resources}
    assert {n for n, p in plans.items() if p.actions and p.actions[0].conflict} == {"s007", "s100"}

    # The region turns out to hold 150 targets: 3 pages, no fewer calls than by id. Stubbed:
    # moto's listing repeats its NextToken once a region holds more than 50 targets.
    many = [{"ResourceId": f"service/other/x{i}", "MinCapacity": 1, "MaxCapacity": 2} for i in range(148)]
    many += [
        {"ResourceId": f"service/{CLUSTER}/{n}", "MinCapacity": 1, "MaxCapacity": 4} for n in ("s007", "s100")
    ]
    sent: list[dict[str, Any]] = []

    def like_aws(**params: Any) -> dict[str, Any]:
        sent.append(params)
        if "ResourceIds" in params:
            return {"ScalableTargets": [t for t in many if t["ResourceId"] in params["ResourceIds"]]}
        start = int(params.get("NextToken", 0))
        page: dict[str, Any] = {"ScalableTargets": many[start : start + 50]}
        if start + 50 < len(many):
            page["NextToken"] = str(start + 50)
        return page

    monkeypatch.setattr(autoscaling, "describe_scalable_targets", like_aws)
    reconciler.observe(resources, desired_state(resources), clients, NOW)  # listed: 3 pages, 150
    assert len(sent) == 3
    assert all("ResourceIds" not in c for c in sent)
    sent.clear()
    observed = reconciler.observe(resources, desired_state(resources), clients, NOW)
    assert [len(c["ResourceIds"]) for c in sent] == [50, 50, 20]
    found = {n for n, o in observed.items() if isinstance(o, ServiceObservation) and o.scalable_target}
    assert found == {"s007", "s100"}
