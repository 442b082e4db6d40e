"""Specification of the SnapshotRetention reconciler against moto (in-process `mock_aws`).

Snapshot ages: moto stamps SnapshotCreateTime with the moment of creation and
no API changes it, so each test creates its snapshots through the API and
then backdates the stored record (`snapshot_helpers.set_created`, which
writes moto's `cluster_snapshots[id].created`). The reconciler gets `now`
as a parameter, so no clock is patched.

Paging: moto returns every snapshot in one page and ignores MaxRecords and
Marker. `AwsPaging` (botocore event hooks on the client) cuts moto's answer
into pages the way AWS does, honouring MaxRecords and Marker, and can answer
one page with an error instead, which is how the fail-closed cases are
injected. Every call is logged with the parameters the caller passed.
"""

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from moto import mock_aws

from homeostat.desired_state.identifiers import Revision
from homeostat.desired_state.state import DesiredState, Resource
from homeostat.reconcilers.actions import ApplyResult, ObserveError, Plan
from homeostat.reconcilers.rds_snapshots import PAGE_SIZE, ClusterSnapshots
from homeostat.reconcilers.snapshot_retention import SnapshotAction
from homeostat.reconcilers.snapshot_retention_reconciler import SnapshotRetentionReconciler

from .conftest import CallLog, CountingClients
from .snapshot_helpers import ACCOUNT, CLUSTER, REGION, create_cluster, resource, seed_snapshot

CREATE_SNAPSHOT = SnapshotAction.CREATE_SNAPSHOT
DELETE_SNAPSHOT = SnapshotAction.DELETE_SNAPSHOT

NOW = datetime(2026, 11, 25, 3, 20, tzinfo=UTC)
DAY = timedelta(days=1)
RECONCILER = SnapshotRetentionReconciler()


class ApiParamsLog(CallLog):
    """Logs each call with the API parameters as the caller passed them."""

    def hook(self, model: Any = None, params: Any = None, **_: Any) -> None:
        self.calls.append((model.service_model.service_name, model.name, dict(params or {})))

    def attach(self, client: Any) -> Any:
        client.meta.events.register("provide-client-params.*.*", self.hook)
        return client


class AwsPaging:
    """Makes moto page DescribeDBClusterSnapshots as AWS does, and optionally fail one page.

    provide-client-params remembers the request's MaxRecords and Marker;
    before-call answers the failing page with an error response (botocore
    raises it as a ClientError, as for a throttled call whose retries ran
    out); after-call slices moto's full answer to the requested page and
    sets the next Marker.
    """

    OPERATION = "rds.DescribeDBClusterSnapshots"

    def __init__(self, client: Any, fail_on_call: int | None = None, error_code: str = "Throttling") -> None:
        self.calls = 0
        self.fail_on_call = fail_on_call
        self.error_code = error_code
        self.request: dict[str, Any] = {}
        client.meta.events.register(f"provide-client-params.{self.OPERATION}", self._params)
        client.meta.events.register(f"before-call.{self.OPERATION}", self._before)
        client.meta.events.register(f"after-call.{self.OPERATION}", self._after)

    def _params(self, params: dict[str, Any], **_: Any) -> None:
        self.request = dict(params)

    def _before(self, **_: Any) -> tuple[Any, dict[str, Any]] | None:
        self.calls += 1
        if self.calls != self.fail_on_call:
            return None
        error = {"Code": self.error_code, "Message": "Rate exceeded"}
        return SimpleNamespace(status_code=400), {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}

    def _after(self, parsed: dict[str, Any], http_response: Any, **_: Any) -> None:
        if http_response.status_code >= 300:
            return
        items = parsed.get("DBClusterSnapshots", [])
        start = int(self.request.get("Marker") or 0)
        size = int(self.request.get("MaxRecords") or 100)
        parsed["DBClusterSnapshots"] = items[start : start + size]
        parsed.pop("Marker", None)
        if start + size < len(items):
            parsed["Marker"] = str(start + size)


@pytest.fixture
def clients(counting_clients: CountingClients) -> Iterator[CountingClients]:
    """clients under mock_aws, logging API parameters, with an Aurora cluster and AWS-like paging."""
    counting_clients.log = ApiParamsLog()
    with mock_aws():
        rds = counting_clients.client("rds")
        create_cluster(rds)
        counting_clients.log.calls.clear()
        yield counting_clients


@pytest.fixture
def paging(clients: CountingClients) -> AwsPaging:
    """AWS-like paging of the listing on the clients' RDS client; set `fail_on_call` to fail a page."""
    return AwsPaging(clients.client("rds"))


def seed(clients: CountingClients, ages: dict[str, timedelta], cluster: str = CLUSTER) -> None:
    rds = clients.client("rds")
    for snapshot_id, age in ages.items():
        seed_snapshot(rds, snapshot_id, NOW - age, cluster)
    clients.log.calls.clear()


def snapshot_ids(clients: CountingClients, cluster: str = CLUSTER) -> set[str]:
    """The manual snapshots of the cluster in moto's backend (the automated one is left out)."""
    from moto.rds.models import rds_backends

    return {
        s.db_cluster_snapshot_identifier
        for s in rds_backends[ACCOUNT][REGION].cluster_snapshots.values()
        if s.db_cluster_identifier == cluster and s.snapshot_type == "manual"
    }


def reconcile(
    clients: CountingClients, resources: Sequence[Resource], now: datetime = NOW
) -> tuple[dict[str, Plan], list[ApplyResult]]:
    """One pass as the operator runs it: observe once, diff each, apply each plan's actions."""
    desired = DesiredState(Revision("test"), Path("."), tuple(resources))
    observed = RECONCILER.observe(resources, desired, clients, now)
    plans = {r.name: RECONCILER.diff(r, observed[r.name], now) for r in resources}
    results: list[ApplyResult] = []
    for plan in plans.values():
        results.extend(RECONCILER.apply(plan.actions, clients))
    return plans, results


def test_expired_owned_snapshots_are_deleted_and_everything_else_stays(clients: CountingClients) -> None:
    """Only expired owned manual snapshots go; fresh, emergency, unrelated and protected ones stay."""
    seed(
        clients,
        {
            "prod-manual-20261101-0300": 24 * DAY,
            "prod-manual-20261117-0300": 8 * DAY,
            "prod-manual-20261124-0300": DAY,
            "prod-manual-keep-20261001": 55 * DAY,
            "prod-emergency-20261001-1200": 55 * DAY,
            "someone-elses-20261001": 55 * DAY,
        },
    )
    plans, results = reconcile(clients, [resource(protect=["prod-emergency-*", "prod-manual-keep-*"])])
    assert [(a.action, a.target) for a in plans["aurora"].actions] == [
        (DELETE_SNAPSHOT, "prod-manual-20261101-0300"),
        (DELETE_SNAPSHOT, "prod-manual-20261117-0300"),
    ]
    assert all(r.error is None for r in results)
    assert snapshot_ids(clients) == {
        "prod-manual-20261124-0300",
        "prod-manual-keep-20261001",
        "prod-emergency-20261001-1200",
        "someone-elses-20261001",
    }
    assert len(clients.log.of("DeleteDBClusterSnapshot")) == 2
    again, _ = reconcile(clients, [resource(protect=["prod-emergency-*", "prod-manual-keep-*"])])
    assert again["aurora"].in_sync


def test_listing_pages_at_100_following_marker(clients: CountingClients, paging: AwsPaging) -> None:
    """250 snapshots are read in 3 pages of MaxRecords=100 following Marker; the oldest 20 expired go."""
    seed(
        clients,
        {
            f"prod-manual-{i:04d}": (30 * DAY if i < 230 else DAY) - i * timedelta(minutes=1)
            for i in range(250)
        },
    )
    plans, results = reconcile(clients, [resource()])
    pages = clients.log.of("DescribeDBClusterSnapshots")
    assert [p.get("Marker") for p in pages] == [None, "100", "200"]
    assert all(
        p["MaxRecords"] == PAGE_SIZE and p["SnapshotType"] == "manual" and p["DBClusterIdentifier"] == CLUSTER
        for p in pages
    )
    deleted = [a.target for a in plans["aurora"].actions]
    assert deleted == [f"prod-manual-{i:04d}" for i in range(20)]  # oldest first, capped at 20
    assert (
        "210 more expired snapshot(s) left for later passes (maxDeletionsPerRun 20)" in plans["aurora"].notes
    )
    assert len(snapshot_ids(clients)) == 230
    assert all(r.error is None for r in results)


def test_an_error_on_the_second_page_deletes_nothing(clients: CountingClients, paging: AwsPaging) -> None:
    """When page 2 of the listing fails, the pass deletes nothing for that resource and says why."""
    seed(clients, {f"prod-manual-{i:04d}": 30 * DAY - i * timedelta(minutes=1) for i in range(150)})
    paging.fail_on_call = 2
    before = snapshot_ids(clients)
    plans, results = reconcile(clients, [resource()])
    plan = plans["aurora"]
    assert plan.error is not None
    assert "failed on page 2" in plan.error
    assert "Throttling" in plan.error
    assert plan.error.endswith("(fail closed)")
    assert plan.actions == ()
    assert results == []
    assert clients.log.of("DeleteDBClusterSnapshot") == []
    assert snapshot_ids(clients) == before


def test_a_failed_listing_still_takes_the_due_slot_without_duplicating_it(
    clients: CountingClients, paging: AwsPaging
) -> None:
    """A failed listing still creates the due slot; a slot snapshot it could not see counts as done."""
    seed(clients, {"prod-manual-20261125-0300": timedelta(minutes=20)})
    paging.fail_on_call = 1
    plans, results = reconcile(clients, [resource(schedule="0 3 * * *")])
    assert plans["aurora"].error is not None
    assert [a.action for a in plans["aurora"].actions] == [CREATE_SNAPSHOT]
    assert [r.error for r in results] == [None]  # AlreadyExists counts as done
    assert snapshot_ids(clients) == {"prod-manual-20261125-0300"}


def test_due_slot_is_created_tagged_and_not_duplicated_by_the_next_pass(clients: CountingClients) -> None:
    """The due slot's snapshot is created once, tagged managed-by=homeostat and with the resource name."""
    plans, results = reconcile(clients, [resource(schedule="0 3 * * *")])
    assert [(a.action, a.target) for a in plans["aurora"].actions] == [
        (CREATE_SNAPSHOT, "prod-manual-20261125-0300")
    ]
    assert [r.error for r in results] == [None]
    rds = clients.client("rds")
    (snapshot,) = rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier="prod-manual-20261125-0300")[
        "DBClusterSnapshots"
    ]
    tags = rds.list_tags_for_resource(ResourceName=snapshot["DBClusterSnapshotArn"])["TagList"]
    assert {"Key": "managed-by", "Value": "homeostat"} in tags
    assert {"Key": "homeostat-resource", "Value": "aurora"} in tags
    later, _ = reconcile(clients, [resource(schedule="0 3 * * *")], NOW + timedelta(minutes=5))
    assert later["aurora"].actions == ()
    assert len(clients.log.of("CreateDBClusterSnapshot")) == 1


def test_a_slot_that_already_exists_on_create_counts_as_done(clients: CountingClients) -> None:
    """CreateDBClusterSnapshot answering AlreadyExists (a concurrent pass took the slot) is success."""
    resources = [resource(schedule="0 3 * * *")]
    desired = DesiredState(Revision("test"), Path("."), tuple(resources))
    plan = RECONCILER.diff(resources[0], RECONCILER.observe(resources, desired, clients, NOW)["aurora"], NOW)
    seed(clients, {"prod-manual-20261125-0300": timedelta(minutes=1)})  # taken meanwhile
    (result,) = RECONCILER.apply(plan.actions, clients)
    assert result.error is None
    assert snapshot_ids(clients) == {"prod-manual-20261125-0300"}


def test_a_slot_name_taken_by_another_cluster_is_an_error_not_done(clients: CountingClients) -> None:
    """AlreadyExists for a snapshot of another cluster (identifiers are account-wide) fails the create."""
    resources = [resource(schedule="0 3 * * *")]
    desired = DesiredState(Revision("test"), Path("."), tuple(resources))
    plan = RECONCILER.diff(resources[0], RECONCILER.observe(resources, desired, clients, NOW)["aurora"], NOW)
    create_cluster(clients.client("rds"), "other")
    seed(clients, {"prod-manual-20261125-0300": timedelta(minutes=1)}, cluster="other")
    (result,) = RECONCILER.apply(plan.actions, clients)
    assert result.error is not None
    assert "already exists for another DB cluster (other)" in result.error
    assert snapshot_ids(clients) == set()


def test_a_snapshot_already_gone_on_delete_counts_as_done(clients: CountingClients) -> None:
    """DeleteDBClusterSnapshot answering NotFound (someone deleted it first) is success."""
    seed(clients, {"prod-manual-old": 9 * DAY, "prod-manual-new": DAY})
    resources = [resource()]
    desired = DesiredState(Revision("test"), Path("."), tuple(resources))
    plan = RECONCILER.diff(resources[0], RECONCILER.observe(resources, desired, clients, NOW)["aurora"], NOW)
    clients.client("rds").delete_db_cluster_snapshot(DBClusterSnapshotIdentifier="prod-manual-old")
    (result,) = RECONCILER.apply(plan.actions, clients)
    assert result.error is None


def test_quota_exceeded_on_create_is_a_clear_error_and_deletions_still_happen(
    clients: CountingClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SnapshotQuotaExceeded fails the create with a clear message; the expired snapshot is still deleted."""
    seed(clients, {"prod-manual-old": 9 * DAY, "prod-manual-new": DAY})
    # The cluster's automated snapshot, the fresh one and the slot would be 3: over a quota of 2.
    monkeypatch.setenv("MOTO_RDS_SNAPSHOT_LIMIT", "2")
    plans, results = reconcile(clients, [resource(schedule="0 3 * * *")])
    by_action = {r.action.action: r for r in results}
    assert by_action[DELETE_SNAPSHOT].error is None
    error = by_action[CREATE_SNAPSHOT].error
    assert error is not None
    assert "quota" in error
    assert "SnapshotQuotaExceeded" in error
    assert snapshot_ids(clients) == {"prod-manual-new"}
    assert [a.action for a in plans["aurora"].actions] == [DELETE_SNAPSHOT, CREATE_SNAPSHOT]


def test_deletions_run_before_the_create_so_they_free_quota(
    clients: CountingClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the quota full, deleting the expired snapshots first makes room for the slot's snapshot."""
    seed(clients, {"prod-manual-old": 9 * DAY, "prod-manual-new": DAY})
    monkeypatch.setenv("MOTO_RDS_SNAPSHOT_LIMIT", "3")  # automated + 2 manual: full
    _, results = reconcile(clients, [resource(schedule="0 3 * * *")])
    assert [r.error for r in results] == [None, None]
    assert snapshot_ids(clients) == {"prod-manual-new", "prod-manual-20261125-0300"}


def test_automated_and_aws_backup_snapshots_are_never_deleted(clients: CountingClients) -> None:
    """An automated snapshot named with the prefix, and an awsbackup: one, survive however old."""
    from moto.rds.models import rds_backends

    backend = rds_backends[ACCOUNT][REGION]
    # moto lets anything be created and deleted at the backend; AWS refuses to delete both kinds.
    backend.create_auto_cluster_snapshot(CLUSTER, "prod-manual-automated")
    backend.create_db_cluster_snapshot(CLUSTER, "awsbackup:job-prod-manual-1")
    for snapshot_id in ("prod-manual-automated", "awsbackup:job-prod-manual-1"):
        backend.cluster_snapshots[snapshot_id].created = (NOW - 60 * DAY).replace(tzinfo=None)
    seed(clients, {"prod-manual-new": DAY})
    plans, _ = reconcile(clients, [resource(retention={"minKeep": 0})])
    assert plans["aurora"].actions == ()
    assert {"prod-manual-automated", "awsbackup:job-prod-manual-1"} <= set(backend.cluster_snapshots)


def test_creating_and_failed_snapshots_are_never_deleted(clients: CountingClients) -> None:
    """Old snapshots that are not `available` stay."""
    from moto.rds.models import rds_backends

    seed(clients, {"prod-manual-creating": 20 * DAY, "prod-manual-failed": 20 * DAY})
    backend = rds_backends[ACCOUNT][REGION]
    backend.cluster_snapshots["prod-manual-creating"].status = "creating"
    backend.cluster_snapshots["prod-manual-failed"].status = "failed"
    plans, _ = reconcile(clients, [resource(retention={"minKeep": 0})])
    assert plans["aurora"].actions == ()


def test_a_missing_cluster_is_an_error_for_its_resource_alone(clients: CountingClients) -> None:
    """A resource naming a cluster that does not exist fails; another on a real cluster is reconciled."""
    seed(clients, {"prod-manual-old": 9 * DAY, "prod-manual-new": DAY})
    plans, _ = reconcile(clients, [resource(), resource("ghost", dbClusterIdentifier="no-such-cluster")])
    assert plans["ghost"].error == "DB cluster no-such-cluster not found"
    assert plans["ghost"].actions == ()
    assert [a.target for a in plans["aurora"].actions] == ["prod-manual-old"]


def test_a_deleted_clusters_leftover_snapshots_are_not_touched(clients: CountingClients) -> None:
    """Manual snapshots outlive their cluster; with the cluster gone nothing is deleted (error instead)."""
    seed(clients, {"prod-manual-old": 9 * DAY, "prod-manual-new": DAY})
    rds = clients.client("rds")
    rds.delete_db_cluster(DBClusterIdentifier=CLUSTER, SkipFinalSnapshot=True)
    plans, results = reconcile(clients, [resource()])
    assert plans["aurora"].error == f"DB cluster {CLUSTER} not found"
    assert results == []


def test_one_pass_costs_one_cluster_check_and_one_listing_per_cluster_page(clients: CountingClients) -> None:
    """Two resources on one cluster and one on another: 1 DescribeDBClusters, one listing per cluster."""
    create_cluster(clients.client("rds"), "aurora-staging")
    seed(clients, {"prod-manual-a": DAY})
    seed(clients, {"staging-manual-a": DAY}, cluster="aurora-staging")
    resources = [
        resource(),
        resource("emergency", snapshotPrefix="prod-emergency-"),
        resource("staging", dbClusterIdentifier="aurora-staging", snapshotPrefix="staging-manual-"),
    ]
    plans, _ = reconcile(clients, resources)
    assert all(p.in_sync for p in plans.values())
    assert clients.log.count() == {"DescribeDBClusters": 1, "DescribeDBClusterSnapshots": 2}
    assert sorted(p["DBClusterIdentifier"] for p in clients.log.of("DescribeDBClusterSnapshots")) == [
        CLUSTER,
        "aurora-staging",
    ]


def test_observation_is_a_value_per_resource(clients: CountingClients) -> None:
    """observe returns a ClusterSnapshots per resource, or an ObserveError when the cluster check fails."""
    resources = [resource()]
    desired = DesiredState(Revision("test"), Path("."), tuple(resources))
    assert isinstance(RECONCILER.observe(resources, desired, clients, NOW)["aurora"], ClusterSnapshots)
    rds = clients.client("rds")
    rds.meta.events.register(
        "before-call.rds.DescribeDBClusters",
        lambda **_: (
            SimpleNamespace(status_code=500),
            {"Error": {"Code": "InternalFailure", "Message": "boom"}, "ResponseMetadata": {}},
        ),
    )
    failed = RECONCILER.observe(resources, desired, clients, NOW)["aurora"]
    assert isinstance(failed, ObserveError)
    assert "InternalFailure" in failed.message


def test_wake_times_are_the_next_slots_of_scheduled_unsuspended_resources() -> None:
    """The daemon is woken at each scheduled resource's next slot, once per instant."""
    desired = DesiredState(
        Revision("test"),
        Path("."),
        (
            resource("a", schedule="0 3 * * *"),
            resource("b", schedule="0 3 * * *", dbClusterIdentifier="other"),
            resource("c", schedule="30 2 * * *", timeZone="Europe/Berlin"),
            resource("d"),
            resource("e", schedule="0 4 * * *", suspend=True),
        ),
    )
    assert RECONCILER.wake_times(desired, NOW) == [
        datetime(2026, 11, 26, 1, 30, tzinfo=UTC),
        datetime(2026, 11, 26, 3, 0, tzinfo=UTC),
    ]
