"""Specification of the AuroraCluster kind: the manifest, the pure diff, observe and apply.

moto 5.2.5 models what this kind reads and writes: create_db_cluster and
modify_db_cluster keep ServerlessV2ScalingConfiguration, BackupRetentionPeriod and
DeletionProtection, and DescribeDBClusters honours the db-cluster-id filter
(case-insensitively). It cannot show a cluster in any status but `available` once
created, nor page or fail part-way; those cases answer from botocore's Stubber.
"""

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws
from pydantic import ValidationError

from homeostat.desired_state.identifiers import Kind, Revision
from homeostat.desired_state.state import DesiredState, Resource, Source
from homeostat.reconcilers.actions import Action, ObserveError, Plan
from homeostat.reconcilers.aurora_cluster import (
    BACKUP_RETENTION,
    CAPACITY_MAX_ACU,
    CLUSTER_AVAILABLE,
    DELETION_PROTECTION,
    MAX_CAPACITY,
    MIN_CAPACITY,
    AuroraCluster,
    AuroraClusterAction,
    AuroraClusterReconciler,
    AuroraClusterSpec,
    ClusterObservation,
    plan_cluster,
    same_cluster_twice,
)
from homeostat.reconcilers.rds_clusters import CLUSTER_FILTER_BATCH

from .conftest import REGION, CountingClients, MotoServer, run_cli, run_main

NOW = datetime(2026, 12, 1, 8, tzinfo=UTC)
CLUSTER = "omnirapeutic-production"
RECONCILER = AuroraClusterReconciler()


def manifest(name: str = "aurora", cluster: str = CLUSTER, **spec: Any) -> AuroraCluster:
    return AuroraCluster.model_validate(
        {
            "apiVersion": "homeostat/v1",
            "kind": "AuroraCluster",
            "metadata": {"name": name},
            "spec": {"dbClusterIdentifier": cluster, **spec},
        }
    )


def resource(
    name: str = "aurora", cluster: str = CLUSTER, line: int = 1, **spec: Any
) -> Resource[AuroraCluster]:
    return Resource(manifest(name, cluster, **spec), Source("aurora.yaml", line))


def live(
    status: str = "available",
    scaling: tuple[float, float] | None = (0.5, 16.0),
    retention: int | None = 7,
    protection: bool | None = True,
) -> ClusterObservation:
    return ClusterObservation(
        identifier=CLUSTER,
        status=status,
        min_capacity=scaling[0] if scaling else None,
        max_capacity=scaling[1] if scaling else None,
        backup_retention_period=retention,
        deletion_protection=protection,
    )


HELD = {"serverlessV2Scaling": {"minCapacity": 0.5, "maxCapacity": 16}, "backupRetentionPeriod": 7}


# --- the manifest -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "declare at least one of serverlessV2Scaling, backupRetentionPeriod or deletionProtection"),
        (
            {"serverlessV2Scaling": {"minCapacity": 8, "maxCapacity": 4}},
            "minCapacity must not exceed maxCapacity",
        ),
        ({"serverlessV2Scaling": {"minCapacity": 0.25, "maxCapacity": 4}}, "multiple of 0.5"),
        ({"serverlessV2Scaling": {"minCapacity": 0.5, "maxCapacity": 0.5}}, "greater than or equal to 1"),
        ({"serverlessV2Scaling": {"minCapacity": 1, "maxCapacity": 256.5}}, "less than or equal to 256"),
        ({"serverlessV2Scaling": {"minCapacity": "1", "maxCapacity": 4}}, "valid number"),
        ({"serverlessV2Scaling": {"maxCapacity": 4}}, "minCapacity"),
        ({"backupRetentionPeriod": 0}, "greater than or equal to 1"),
        ({"backupRetentionPeriod": 36}, "less than or equal to 35"),
        ({"deletionProtection": "yes"}, "valid boolean"),
        ({"deletionProtection": True, "maxAcu": 4}, "Extra inputs are not permitted"),
    ],
)
def test_a_spec_outside_the_aws_ranges_or_with_nothing_to_hold_is_refused(
    spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        manifest(**spec)


def test_the_aws_edges_are_accepted() -> None:
    """MinCapacity 0 (automatic pause) and 256 ACUs, retention 1 and 35 days, each field alone."""
    assert manifest(serverlessV2Scaling={"minCapacity": 0, "maxCapacity": 1}).spec.serverlessV2Scaling
    assert manifest(serverlessV2Scaling={"minCapacity": 256, "maxCapacity": 256}).spec.serverlessV2Scaling
    assert manifest(backupRetentionPeriod=1).spec.backupRetentionPeriod == 1
    assert manifest(backupRetentionPeriod=35).spec.backupRetentionPeriod == 35
    assert manifest(deletionProtection=False).spec.deletionProtection is False


def test_validate_names_file_line_and_field_of_a_bad_aurora_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing to hold and an off-step capacity: one line each, exit 1, no traceback."""
    head = "apiVersion: homeostat/v1\nkind: AuroraCluster\nmetadata: {name: %s}\nspec:\n"
    (tmp_path / "empty.yaml").write_text(head % "empty" + f"  dbClusterIdentifier: {CLUSTER}\n")
    (tmp_path / "step.yaml").write_text(
        head % "step"
        + "  dbClusterIdentifier: other\n  serverlessV2Scaling: {minCapacity: 0.25, maxCapacity: 4}\n"
    )
    result = run_main(capsys, "validate", str(tmp_path))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = sorted((result.stdout + result.stderr).strip().splitlines())
    assert lines == [
        f"{tmp_path / 'empty.yaml'}:4: spec: declare at least one of serverlessV2Scaling, "
        "backupRetentionPeriod or deletionProtection (nothing to hold)",
        f"{tmp_path / 'step.yaml'}:6: spec.serverlessV2Scaling.minCapacity: "
        "Input should be a multiple of 0.5",
    ]


def test_two_manifests_for_one_cluster_are_an_error_at_the_second() -> None:
    first = resource("a", CLUSTER, line=1, deletionProtection=True)
    second = resource("b", CLUSTER.upper(), line=9, backupRetentionPeriod=7)
    other = resource("c", "other-cluster", line=20, backupRetentionPeriod=7)
    (error,) = same_cluster_twice([first, second, other])
    assert (error.file, error.line, error.field) == ("aurora.yaml", 9, "spec.dbClusterIdentifier")
    assert "as does AuroraCluster 'a' (aurora.yaml:1)" in error.message


# --- the pure diff ------------------------------------------------------------------------------------

CAPACITY = st.integers(min_value=0, max_value=512).map(lambda half: half / 2)
SCALING = st.tuples(CAPACITY, CAPACITY).filter(lambda b: b[0] <= b[1] and b[1] >= 1)
SPECS = st.fixed_dictionaries(
    {},
    optional={
        "serverlessV2Scaling": SCALING.map(lambda b: {"minCapacity": b[0], "maxCapacity": b[1]}),
        "backupRetentionPeriod": st.integers(min_value=1, max_value=35),
        "deletionProtection": st.booleans(),
    },
).filter(bool)
LIVE = st.builds(
    live,
    status=st.just("available"),
    scaling=st.none() | SCALING,
    retention=st.none() | st.integers(min_value=1, max_value=35),
    protection=st.none() | st.booleans(),
)


def declared_paths(spec: AuroraClusterSpec) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    if spec.serverlessV2Scaling is not None:
        paths[MIN_CAPACITY] = spec.serverlessV2Scaling.minCapacity
        paths[MAX_CAPACITY] = spec.serverlessV2Scaling.maxCapacity
    if spec.backupRetentionPeriod is not None:
        paths[BACKUP_RETENTION] = spec.backupRetentionPeriod
    if spec.deletionProtection is not None:
        paths[DELETION_PROTECTION] = spec.deletionProtection
    return paths


def values_of(observed: ClusterObservation) -> dict[str, Any]:
    return {
        MIN_CAPACITY: observed.min_capacity,
        MAX_CAPACITY: observed.max_capacity,
        BACKUP_RETENTION: observed.backup_retention_period,
        DELETION_PROTECTION: observed.deletion_protection,
    }


def modify(observed: ClusterObservation, params: dict[str, Any]) -> ClusterObservation:
    """What AWS does with a ModifyDBCluster: set what the call carries, keep everything else."""
    scaling = params.get("ServerlessV2ScalingConfiguration")
    return ClusterObservation(
        identifier=observed.identifier,
        status=observed.status,
        min_capacity=scaling["MinCapacity"] if scaling else observed.min_capacity,
        max_capacity=scaling["MaxCapacity"] if scaling else observed.max_capacity,
        backup_retention_period=params.get("BackupRetentionPeriod", observed.backup_retention_period),
        deletion_protection=params.get("DeletionProtection", observed.deletion_protection),
    )


@settings(deadline=None)
@given(spec=SPECS, observed=LIVE)
def test_only_declared_drifted_fields_appear_and_one_modify_converges(
    spec: dict[str, Any], observed: ClusterObservation
) -> None:
    """At most one ModifyDBCluster; its before/after name exactly the declared fields that differ,
    with the live and declared values; its parameters carry nothing undeclared; applied, the
    cluster holds every declared value, keeps every undeclared one, and a second diff is empty."""
    declared = manifest(**spec).spec
    plan = plan_cluster("aurora", declared, observed)
    wanted = declared_paths(declared)
    current = values_of(observed)
    drifted = {path for path, value in wanted.items() if current[path] != value}
    assert plan.error is None
    if not drifted:
        assert plan.actions == ()
        return
    (action,) = plan.actions
    assert action.action == AuroraClusterAction.MODIFY_DB_CLUSTER
    assert action.target == CLUSTER
    assert set(action.before) == set(action.after) == drifted
    assert all(action.before[p] == current[p] and action.after[p] == wanted[p] for p in drifted)
    assert action.params["ApplyImmediately"] is True
    assert action.params["DBClusterIdentifier"] == CLUSTER
    sent = set(action.params) - {"DBClusterIdentifier", "ApplyImmediately"}
    assert ("ServerlessV2ScalingConfiguration" in sent) == bool(drifted & {MIN_CAPACITY, MAX_CAPACITY})
    assert ("BackupRetentionPeriod" in sent) == (BACKUP_RETENTION in drifted)
    assert ("DeletionProtection" in sent) == (DELETION_PROTECTION in drifted)
    fixed = modify(observed, dict(action.params))
    after = values_of(fixed)
    assert all(after[p] == wanted[p] for p in wanted)
    assert all(after[p] == current[p] for p in current if p not in wanted)
    assert plan_cluster("aurora", declared, fixed).actions == ()


@settings(deadline=None)
@given(spec=SPECS)
def test_a_cluster_already_at_its_spec_gets_no_action(spec: dict[str, Any]) -> None:
    declared = manifest(**spec).spec
    scaling = declared.serverlessV2Scaling
    observed = live(
        scaling=(scaling.minCapacity, scaling.maxCapacity) if scaling else (2, 64),
        retention=declared.backupRetentionPeriod or 3,
        protection=declared.deletionProtection if declared.deletionProtection is not None else False,
    )
    plan = plan_cluster("aurora", declared, observed)
    assert plan.in_sync
    assert plan.actions == ()


def test_raised_max_acus_are_lowered_with_only_that_field_shown() -> None:
    """Someone raised max ACUs to 64 during an incident: one ModifyDBCluster, before/after the max only;
    the scaling configuration is sent whole (both declared bounds), ApplyImmediately true."""
    plan = plan_cluster("aurora", manifest(**HELD).spec, live(scaling=(0.5, 64)))
    (action,) = plan.actions
    assert (dict(action.before), dict(action.after)) == ({MAX_CAPACITY: 64}, {MAX_CAPACITY: 16})
    assert action.reason == "drift: serverlessV2Scaling.maxCapacity differs from the manifest"
    assert dict(action.params) == {
        "DBClusterIdentifier": CLUSTER,
        "ApplyImmediately": True,
        "ServerlessV2ScalingConfiguration": {"MinCapacity": 0.5, "MaxCapacity": 16},
    }


def test_the_plan_notes_the_status_and_settings_and_sets_the_gauges() -> None:
    plan = plan_cluster("aurora", manifest(**HELD).spec, live(scaling=(0.5, 64), protection=False))
    assert plan.notes[0] == (
        f"cluster {CLUSTER} is available: serverless v2 0.5-64 ACUs, backup retention 7 days, "
        "deletion protection off"
    )
    assert [(m.metric, dict(m.labels), m.value) for m in plan.measurements] == [
        (CLUSTER_AVAILABLE, {"name": "aurora"}, 1),
        (CAPACITY_MAX_ACU, {"name": "aurora"}, 64),
    ]
    provisioned = plan_cluster("aurora", manifest(backupRetentionPeriod=7).spec, live(scaling=None))
    assert provisioned.notes[0].startswith(f"cluster {CLUSTER} is available: no serverless v2 scaling, ")
    assert [m.metric for m in provisioned.measurements] == [CLUSTER_AVAILABLE]


@pytest.mark.parametrize("status", ["modifying", "backing-up", "upgrading", "maintenance"])
def test_a_cluster_that_is_not_available_is_left_for_a_later_pass(status: str) -> None:
    """No action and no error, whatever drifted; the notes say why and name the drift seen."""
    plan = plan_cluster("aurora", manifest(**HELD).spec, live(status=status, scaling=(0.5, 64)))
    assert plan.actions == ()
    assert plan.error is None
    assert plan.notes == (
        f"cluster {CLUSTER} is {status}: serverless v2 0.5-64 ACUs, backup retention 7 days, "
        "deletion protection on",
        f"cluster is {status}; left for a later pass",
        "drift left for a later pass: serverlessV2Scaling.maxCapacity 64 -> 16",
    )
    assert plan.measurements[0].value == 0


# --- observe and apply against moto -------------------------------------------------------------------


@pytest.fixture
def aws() -> Iterator[CountingClients]:
    with mock_aws():
        yield CountingClients()


def create_cluster(rds: Any, cluster: str = CLUSTER, **settings: Any) -> None:
    rds.create_db_cluster(
        DBClusterIdentifier=cluster,
        Engine="aurora-postgresql",
        MasterUsername="admin",
        MasterUserPassword="password123",
        **settings,
    )


def desired(*resources: Resource[AuroraCluster]) -> DesiredState:
    return DesiredState(Revision("test"), tuple(resources))


def reconcile(aws: Any, *resources: Resource[AuroraCluster]) -> dict[str, Plan]:
    observed = RECONCILER.observe(resources, desired(*resources), aws, NOW)
    return {r.name: RECONCILER.diff(r, observed[r.name], NOW) for r in resources}


def test_observe_reads_every_cluster_in_one_call_and_apply_restores_the_declared_settings(
    aws: CountingClients,
) -> None:
    """Two clusters drifted by hand, one missing: one DescribeDBClusters for all three; the missing one
    is an error for its resource alone; each drifted cluster gets one ModifyDBCluster with only its
    drifted declared fields, and undeclared settings stay as they were."""
    rds = aws.client("rds")
    create_cluster(
        rds,
        ServerlessV2ScalingConfiguration={"MinCapacity": 0.5, "MaxCapacity": 64},
        BackupRetentionPeriod=7,
        DeletionProtection=False,
    )
    create_cluster(rds, "reporting", BackupRetentionPeriod=1, DeletionProtection=True)
    aws.log.calls.clear()
    production = resource("production", CLUSTER, **HELD)
    reporting = resource("reporting", "Reporting", backupRetentionPeriod=14)
    missing = resource("gone", "gone-cluster", deletionProtection=True)
    plans = reconcile(aws, production, reporting, missing)
    assert aws.log.count() == {"DescribeDBClusters": 1}
    (call,) = aws.log.of("DescribeDBClusters")
    assert call["Filters"] == [{"Name": "db-cluster-id", "Values": ["gone-cluster", CLUSTER, "reporting"]}]
    assert plans["gone"].error == "DB cluster gone-cluster not found"
    (fix_production,) = plans["production"].actions
    (fix_reporting,) = plans["reporting"].actions
    assert dict(fix_production.after) == {MAX_CAPACITY: 16}
    assert dict(fix_reporting.before) == {BACKUP_RETENTION: 1}

    results = RECONCILER.apply([fix_production, fix_reporting], aws)
    assert [r.error for r in results] == [None, None]
    assert [p["ApplyImmediately"] for p in aws.log.of("ModifyDBCluster")] == [True, True]
    clusters = {c["DBClusterIdentifier"]: c for c in rds.describe_db_clusters()["DBClusters"]}
    assert clusters[CLUSTER]["ServerlessV2ScalingConfiguration"] == {"MinCapacity": 0.5, "MaxCapacity": 16}
    assert clusters[CLUSTER]["DeletionProtection"] is False  # not declared: left as it was
    assert clusters["reporting"]["BackupRetentionPeriod"] == 14
    assert clusters["reporting"]["DeletionProtection"] is True
    assert "ServerlessV2ScalingConfiguration" not in clusters["reporting"]
    again = reconcile(aws, production, reporting)
    assert all(p.in_sync for p in again.values())


def test_a_failed_modify_is_that_action_s_error() -> None:
    action = Action(
        kind=Kind("AuroraCluster"),
        name="aurora",
        action=AuroraClusterAction.MODIFY_DB_CLUSTER,
        target=CLUSTER,
        before={BACKUP_RETENTION: 1},
        after={BACKUP_RETENTION: 7},
        reason="drift",
        params={"DBClusterIdentifier": CLUSTER, "ApplyImmediately": True, "BackupRetentionPeriod": 7},
    )
    stubbed = StubbedClients()
    stubbed.stubber.add_client_error(
        "modify_db_cluster", service_error_code="InvalidDBClusterStateFault", service_message="busy"
    )
    with stubbed.stubber:
        (result,) = RECONCILER.apply([action], stubbed)
    assert result.error == "ModifyDBCluster failed: InvalidDBClusterStateFault: busy"


# --- statuses, paging and failures (Stubber: moto shows every cluster available, in one page) ---------


class StubbedClients:
    def __init__(self) -> None:
        self.rds = boto3.client("rds", region_name=REGION)
        self.stubber = Stubber(self.rds)

    def client(self, service: str) -> Any:
        assert service == "rds"
        return self.rds


def cluster_item(identifier: str, status: str = "available", max_acu: float = 16) -> dict[str, Any]:
    return {
        "DBClusterIdentifier": identifier,
        "Status": status,
        "ServerlessV2ScalingConfiguration": {"MinCapacity": 0.5, "MaxCapacity": max_acu},
        "BackupRetentionPeriod": 7,
        "DeletionProtection": True,
    }


def request(values: list[str], marker: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"Filters": [{"Name": "db-cluster-id", "Values": values}], "MaxRecords": 100}
    if marker:
        params["Marker"] = marker
    return params


def test_a_modifying_cluster_is_observed_and_left_alone() -> None:
    """The Stubber answers Status modifying (moto cannot): no action, no error, the note says why."""
    aws = StubbedClients()
    aws.stubber.add_response(
        "describe_db_clusters", {"DBClusters": [cluster_item(CLUSTER, "modifying", 64)]}, request([CLUSTER])
    )
    with aws.stubber:
        plans = reconcile(aws, resource(**HELD))
    aws.stubber.assert_no_pending_responses()
    plan = plans["aurora"]
    assert (plan.actions, plan.error) == ((), None)
    assert "cluster is modifying; left for a later pass" in plan.notes


def test_observe_follows_marker_and_batches_100_identifiers_per_call() -> None:
    names = [f"cluster-{i:03d}" for i in range(CLUSTER_FILTER_BATCH + 1)]
    first, rest = names[:CLUSTER_FILTER_BATCH], names[CLUSTER_FILTER_BATCH:]
    aws = StubbedClients()
    aws.stubber.add_response(
        "describe_db_clusters",
        {"DBClusters": [cluster_item(n) for n in first[:50]], "Marker": "m1"},
        request(first),
    )
    aws.stubber.add_response(
        "describe_db_clusters", {"DBClusters": [cluster_item(n) for n in first[50:]]}, request(first, "m1")
    )
    aws.stubber.add_response(
        "describe_db_clusters", {"DBClusters": [cluster_item(n, max_acu=32) for n in rest]}, request(rest)
    )
    resources = [resource(n, n, **HELD) for n in names]
    with aws.stubber:
        plans = reconcile(aws, *resources)
    aws.stubber.assert_no_pending_responses()
    assert [n for n, p in plans.items() if not p.in_sync] == ["cluster-100"]
    assert all(p.error is None for p in plans.values())


def test_a_read_that_fails_on_any_page_is_an_error_for_every_resource_and_changes_nothing() -> None:
    aws = StubbedClients()
    aws.stubber.add_response(
        "describe_db_clusters",
        {"DBClusters": [cluster_item("a", max_acu=64)], "Marker": "m1"},
        request(["a", "b"]),
    )
    aws.stubber.add_client_error(
        "describe_db_clusters", service_error_code="Throttling", expected_params=request(["a", "b"], "m1")
    )
    with aws.stubber:
        observed = RECONCILER.observe(
            [resource("a", "a", **HELD), resource("b", "b", **HELD)], desired(), aws, NOW
        )
    assert observed == {
        name: ObserveError("cannot read the DB clusters: DescribeDBClusters failed: Throttling:")
        for name in "ab"
    }


# --- end to end: `run --once` against moto's server ---------------------------------------------------


@pytest.mark.e2e
def test_run_once_lowers_max_acus_raised_by_hand(moto_server: MotoServer, tmp_path: Path) -> None:
    """Max ACUs raised to 64 during an incident: `plan` exits 2 and shows the one field, `run --once`
    sends one ModifyDBCluster and records it, `plan` then exits 0; undeclared settings are untouched."""
    rds = moto_server.client("rds")
    create_cluster(
        rds,
        ServerlessV2ScalingConfiguration={"MinCapacity": 0.5, "MaxCapacity": 64},
        BackupRetentionPeriod=7,
        DeletionProtection=False,
    )
    state = tmp_path / "desired"
    state.mkdir()
    (state / "aurora.yaml").write_text(
        "apiVersion: homeostat/v1\nkind: AuroraCluster\nmetadata: {name: aurora-production}\nspec:\n"
        f"  dbClusterIdentifier: {CLUSTER}\n"
        "  serverlessV2Scaling: {minCapacity: 0.5, maxCapacity: 16}\n  backupRetentionPeriod: 7\n"
    )
    env = moto_server.env(
        HOMEOSTAT_DESIRED_STATE=str(state),
        HOMEOSTAT_HISTORY=f"sqlite:///{tmp_path / 'history.db'}",
        HOMEOSTAT_LOG_FORMAT="json",
    )

    plan = run_cli("plan", "--json", env=env)
    assert plan.returncode == 2, plan.stdout + plan.stderr
    (planned,) = json.loads(plan.stdout)["resources"]
    (action,) = planned["actions"]
    assert (action["action"], action["before"], action["after"]) == (
        "modify_db_cluster",
        {MAX_CAPACITY: 64},
        {MAX_CAPACITY: 16},
    )
    assert planned["notes"][0].startswith(f"cluster {CLUSTER} is available: serverless v2 0.5-64 ACUs")

    fixed = run_cli("run", "--once", env=env)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    (cluster,) = rds.describe_db_clusters(DBClusterIdentifier=CLUSTER)["DBClusters"]
    assert cluster["ServerlessV2ScalingConfiguration"] == {"MinCapacity": 0.5, "MaxCapacity": 16}
    assert cluster["DeletionProtection"] is False
    history = run_cli("history", "--json", env=env)
    assert history.returncode == 0, history.stderr
    rows = [json.loads(line) for line in history.stdout.splitlines() if line.strip()]
    assert [(r["kind"], r["action"], r["target"], r["outcome"], r["after"]) for r in rows] == [
        ("AuroraCluster", "modify_db_cluster", CLUSTER, "applied", {MAX_CAPACITY: 16})
    ]
    in_sync = run_cli("plan", env=env)
    assert in_sync.returncode == 0, in_sync.stdout + in_sync.stderr
