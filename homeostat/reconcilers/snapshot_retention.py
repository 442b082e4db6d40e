"""SnapshotRetention: scheduled manual Aurora cluster snapshots and their retention.

Observe (per pass, all resources of the kind at once): one DescribeDBClusters
for every cluster named (Filters db-cluster-id, 100 per call, following
Marker) so that a missing cluster is an error for its resources alone, and
per cluster DescribeDBClusterSnapshots(SnapshotType=manual, MaxRecords=100)
following Marker to the end. Resources on the same cluster share one listing.
Diff (pure, `snapshot_policy`): delete expired owned snapshots, take the
latest schedule slot if it is due, note the next slot and anything held back.
Apply: one DeleteDBClusterSnapshot per deletion, then CreateDBClusterSnapshot
for the slot (deletions first, so they free quota before the create).

Fail closed: a listing that failed or was cut short on any page deletes
nothing for that resource (the plan carries the error); the slot snapshot is
still taken, because creating it is safe without the full listing (a
snapshot of that name that already exists answers AlreadyExists, which
counts as done).
"""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from homeostat.desired_state.cron import next_fire
from homeostat.desired_state.identifiers import DBClusterId, Kind, SnapshotId
from homeostat.desired_state.models import SnapshotRetention, SnapshotRetentionSpec
from homeostat.desired_state.state import DesiredState, Resource
from homeostat.reconcilers.actions import Action, ApplyResult, Finding, Measurement, ObserveError, Plan
from homeostat.reconcilers.aws import AWS_ERRORS, AwsClients, chunks, describe_error, error_code, pages
from homeostat.reconcilers.snapshot_policy import (
    Deletion,
    ObservedSnapshot,
    RetentionRules,
    SlotDecision,
    SlotState,
    decide_slot,
    describe_lateness,
    human_duration,
    newest_available_age,
    owned_snapshots,
    select_deletions,
    slot_snapshot_id,
    utc_text,
)

CREATE_SNAPSHOT = "create_snapshot"
DELETE_SNAPSHOT = "delete_snapshot"
PAGE_SIZE = 100  # DescribeDBClusterSnapshots and DescribeDBClusters accept 20-100
CLUSTER_FILTER_BATCH = 100
MANAGED_BY_TAG = "managed-by"
MANAGED_BY_VALUE = "homeostat"
RESOURCE_TAG = "homeostat-resource"
NEWEST_AGE_METRIC = "snapshot_newest_age_seconds"
OWNED_METRIC = "snapshots_owned"

ALREADY_EXISTS = "DBClusterSnapshotAlreadyExistsFault"
SNAPSHOT_NOT_FOUND = "DBClusterSnapshotNotFoundFault"
QUOTA_EXCEEDED = "SnapshotQuotaExceeded"


@dataclass(frozen=True, slots=True)
class ClusterSnapshots:
    """The manual snapshots of one existing cluster; `listing_error` set when the
    listing failed or was cut short, in which case `snapshots` may be partial."""

    cluster: DBClusterId
    snapshots: tuple[ObservedSnapshot, ...]
    listing_error: str | None = None


def _spec(resource: Resource) -> SnapshotRetentionSpec:
    assert isinstance(resource.manifest, SnapshotRetention)
    return resource.manifest.spec


def rules_of(spec: SnapshotRetentionSpec) -> RetentionRules:
    return RetentionRules(
        cluster=DBClusterId(spec.dbClusterIdentifier),
        prefix=spec.snapshotPrefix,
        max_age=spec.retention.maxAge,
        min_keep=spec.retention.minKeep,
        max_deletions=spec.retention.maxDeletionsPerRun,
        protect=tuple(spec.protect),
    )


def _aware(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def snapshot_of(item: Mapping[str, Any]) -> ObservedSnapshot:
    """An ObservedSnapshot from one DBClusterSnapshots entry of the AWS response."""
    return ObservedSnapshot(
        identifier=SnapshotId(str(item["DBClusterSnapshotIdentifier"])),
        cluster=DBClusterId(str(item.get("DBClusterIdentifier", ""))),
        snapshot_type=str(item.get("SnapshotType", "")),
        status=str(item.get("Status", "")),
        created=_aware(item.get("SnapshotCreateTime")),
    )


def list_cluster_snapshots(rds: Any, cluster: str) -> ClusterSnapshots:
    """Every manual snapshot of a cluster, 100 per page following Marker; fails closed.

    Any error on any page, or a Marker that repeats, marks the listing as
    incomplete; what was read so far is kept only to spot an existing slot.
    """
    found: list[ObservedSnapshot] = []
    listing = pages(
        rds.describe_db_cluster_snapshots,
        "Marker",
        DBClusterIdentifier=cluster,
        SnapshotType="manual",
        MaxRecords=PAGE_SIZE,
    )
    page = 1
    try:
        for response in listing:
            found.extend(snapshot_of(item) for item in response.get("DBClusterSnapshots", []))
            page += 1
    except AWS_ERRORS as exc:  # an error on any page, or a repeated Marker (ListingCutShort)
        return ClusterSnapshots(
            DBClusterId(cluster),
            tuple(found),
            f"listing snapshots of cluster {cluster} failed on page {page}: {describe_error(exc)}",
        )
    return ClusterSnapshots(DBClusterId(cluster), tuple(found))


def existing_clusters(rds: Any, clusters: Sequence[str]) -> set[str]:
    """Lower-cased identifiers of the named clusters that exist (raises on AWS errors)."""
    found: set[str] = set()
    for batch in chunks(sorted(clusters), CLUSTER_FILTER_BATCH):
        filters = [{"Name": "db-cluster-id", "Values": batch}]
        for response in pages(rds.describe_db_clusters, "Marker", Filters=filters, MaxRecords=PAGE_SIZE):
            found.update(str(c["DBClusterIdentifier"]).lower() for c in response.get("DBClusters", []))
    return found


def deletion_action(name: str, deletion: Deletion) -> Action:
    snapshot = deletion.snapshot
    return Action(
        kind=Kind.SNAPSHOT_RETENTION,
        name=name,
        action=DELETE_SNAPSHOT,
        target=snapshot.identifier,
        before={"snapshot": snapshot.identifier},  # the creation time is in the reason
        after={"snapshot": None},
        reason=deletion.reason,
        params={"DBClusterSnapshotIdentifier": snapshot.identifier},
    )


def creation_action(name: str, spec: SnapshotRetentionSpec, slot: SlotDecision) -> Action:
    assert slot.slot is not None
    assert slot.snapshot_id is not None
    late = (
        "on time"
        if slot.lateness.total_seconds() < 60
        else f"{describe_lateness(slot.lateness)} late, "
        f"within startingDeadline {human_duration(spec.startingDeadline)}"
    )
    return Action(
        kind=Kind.SNAPSHOT_RETENTION,
        name=name,
        action=CREATE_SNAPSHOT,
        target=slot.snapshot_id,
        before={"snapshot": None},
        after={"snapshot": slot.snapshot_id},  # the slot is in the reason
        reason=f"scheduled slot {utc_text(slot.slot)} ({spec.schedule} in {spec.timeZone}), {late}",
        params={
            "DBClusterIdentifier": spec.dbClusterIdentifier,
            "DBClusterSnapshotIdentifier": slot.snapshot_id,
            "Tags": [
                {"Key": MANAGED_BY_TAG, "Value": MANAGED_BY_VALUE},
                {"Key": RESOURCE_TAG, "Value": name},
            ],
        },
    )


def slot_notes(spec: SnapshotRetentionSpec, slot: SlotDecision) -> list[str]:
    notes: list[str] = []
    if slot.state == SlotState.MISSED and slot.slot is not None:
        notes.append(
            f"missed slot {utc_text(slot.slot)}: {describe_lateness(slot.lateness)} late, beyond "
            f"startingDeadline {human_duration(spec.startingDeadline)}; not taken"
        )
    if slot.next_slot is not None:
        notes.append(f"next slot {utc_text(slot.next_slot)} ({spec.schedule} in {spec.timeZone})")
    return notes


def plan_snapshots(name: str, spec: SnapshotRetentionSpec, observed: ClusterSnapshots, now: datetime) -> Plan:
    """Pure: the plan of one resource over its cluster's observed manual snapshots."""
    rules = rules_of(spec)
    slot = decide_slot(
        spec.schedule,
        spec.timeZone,
        spec.startingDeadline,
        spec.retention.maxAge,
        spec.snapshotPrefix,
        (s.identifier for s in observed.snapshots),
        now,
    )
    actions: list[Action] = []
    notes: list[str] = []
    measurements: tuple[Measurement, ...] = ()
    error: str | None = None
    if observed.listing_error is not None:
        error = f"{observed.listing_error}; no snapshot deleted this pass (fail closed)"
    else:
        decision = select_deletions(observed.snapshots, rules, now)
        actions.extend(deletion_action(name, d) for d in decision.deletions)
        if decision.kept_for_min_keep:
            notes.append(
                f"{decision.kept_for_min_keep} expired snapshot(s) kept to honour "
                f"minKeep {spec.retention.minKeep}"
            )
        if decision.deferred:
            notes.append(
                f"{decision.deferred} more expired snapshot(s) left for later passes "
                f"(maxDeletionsPerRun {spec.retention.maxDeletionsPerRun})"
            )
        age = newest_available_age(observed.snapshots, rules, now)
        labels = {"name": name}
        measurements = (
            # +Inf when there is no available owned snapshot, so a freshness alert fires.
            Measurement(NEWEST_AGE_METRIC, labels, float("inf") if age is None else age),
            Measurement(OWNED_METRIC, labels, float(len(owned_snapshots(observed.snapshots, rules)))),
        )
    if slot.state == SlotState.DUE:
        actions.append(creation_action(name, spec, slot))
    notes.extend(slot_notes(spec, slot))
    return Plan(
        Kind.SNAPSHOT_RETENTION,
        name,
        actions=tuple(actions),
        error=error,
        notes=tuple(notes),
        measurements=measurements,
        findings=missed_slot_findings(name, spec, slot),
    )


def missed_slot_findings(name: str, spec: SnapshotRetentionSpec, slot: SlotDecision) -> tuple[Finding, ...]:
    """A slot missed beyond its deadline is recorded in the history once (the executor
    deduplicates), as a create_snapshot that failed; it is never taken late."""
    if slot.state != SlotState.MISSED or slot.slot is None:
        return ()
    return (
        Finding(
            kind=Kind.SNAPSHOT_RETENTION,
            name=name,
            action=CREATE_SNAPSHOT,
            target=slot_snapshot_id(spec.snapshotPrefix, slot.slot),
            reason=f"scheduled slot {utc_text(slot.slot)} ({spec.schedule} in {spec.timeZone})",
            error=(f"missed: beyond startingDeadline {human_duration(spec.startingDeadline)}; not taken"),
        ),
    )


def _other_owner(rds: Any, action: Action) -> str | None:
    """None when the existing snapshot of the slot's name belongs to the action's cluster, else why not."""
    cluster = str(action.params["DBClusterIdentifier"])
    try:
        found = rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=action.target)
    except AWS_ERRORS as exc:
        return f"snapshot {action.target} already exists and cannot be checked: {describe_error(exc)}"
    owners = {str(s.get("DBClusterIdentifier", "")).lower() for s in found.get("DBClusterSnapshots", [])}
    if cluster.lower() in owners:
        return None
    return (
        f"snapshot {action.target} already exists for another DB cluster ({', '.join(sorted(owners))}); "
        f"no snapshot of {cluster} was taken for this slot"
    )


class SnapshotRetentionReconciler:
    kind: ClassVar[Kind] = Kind.SNAPSHOT_RETENTION

    def observe(
        self, resources: Sequence[Resource], desired: DesiredState, aws: AwsClients, now: datetime
    ) -> Mapping[str, object]:
        by_cluster: dict[str, list[Resource]] = defaultdict(list)
        for resource in resources:
            by_cluster[_spec(resource).dbClusterIdentifier.lower()].append(resource)
        results: dict[str, object] = {}
        if not by_cluster:
            return results
        rds = aws.client("rds")
        try:
            present = existing_clusters(rds, list(by_cluster))
        except AWS_ERRORS as exc:
            message = f"cannot check the DB clusters exist: {describe_error(exc)}"
            return {r.name: ObserveError(message) for r in resources}
        for cluster, members in by_cluster.items():
            if cluster not in present:
                for resource in members:
                    results[resource.name] = ObserveError(
                        f"DB cluster {_spec(resource).dbClusterIdentifier} not found"
                    )
                continue
            listing = list_cluster_snapshots(rds, cluster)
            for resource in members:
                results[resource.name] = listing
        return results

    def diff(self, resource: Resource, observed: object, now: datetime) -> Plan:
        if isinstance(observed, ObserveError):
            return Plan(self.kind, resource.name, error=observed.message)
        assert isinstance(observed, ClusterSnapshots)
        return plan_snapshots(resource.name, _spec(resource), observed, now)

    def apply(self, actions: Sequence[Action], aws: AwsClients) -> list[ApplyResult]:
        """Deletions first (they may free quota for the create), results in the given order."""
        order = sorted(range(len(actions)), key=lambda i: actions[i].action != DELETE_SNAPSHOT)
        results: dict[int, ApplyResult] = {}
        for index in order:
            results[index] = self._apply_one(actions[index], aws)
        return [results[i] for i in range(len(actions))]

    @staticmethod
    def _apply_one(action: Action, aws: AwsClients) -> ApplyResult:
        rds = aws.client("rds")
        try:
            if action.action == DELETE_SNAPSHOT:
                rds.delete_db_cluster_snapshot(**action.params)
            elif action.action == CREATE_SNAPSHOT:
                rds.create_db_cluster_snapshot(**action.params)
            else:
                raise ValueError(f"unknown action {action.action}")
        except AWS_ERRORS as exc:
            code = error_code(exc)
            if action.action == DELETE_SNAPSHOT and code == SNAPSHOT_NOT_FOUND:
                return ApplyResult(action)  # already gone: the deletion is done
            if action.action == CREATE_SNAPSHOT and code == ALREADY_EXISTS:
                # This slot was taken already (restart, concurrent pass) -- if it is this
                # cluster's snapshot: identifiers are unique per account and region.
                return ApplyResult(action, _other_owner(rds, action))
            if code == QUOTA_EXCEEDED:
                return ApplyResult(
                    action,
                    f"snapshot {action.target} not created: the account's manual DB cluster snapshot "
                    f"quota is exhausted (raise the RDS quota or shorten retention); {describe_error(exc)}",
                )
            return ApplyResult(action, describe_error(exc))
        return ApplyResult(action)

    def wake_times(self, desired: DesiredState, now: datetime) -> list[datetime]:
        """The next schedule slot of each scheduled, unsuspended resource."""
        instants: set[datetime] = set()
        for resource in desired.of_kind(self.kind):
            spec = _spec(resource)
            if spec.schedule is not None and not spec.suspend:
                instants.add(next_fire(spec.schedule, spec.timeZone, now))
        return sorted(instants)
