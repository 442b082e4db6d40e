"""SnapshotRetention: scheduled manual Aurora cluster snapshots and their retention.

This module is the kind (model, pure plan, checks, descriptor); its reconciler, the AWS
reads and calls, is `snapshot_retention_reconciler`.

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

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, StrictInt

from homeostat.desired_state.cron import CronExpression, TimeZoneName
from homeostat.desired_state.durations import Duration
from homeostat.desired_state.identifiers import DBClusterId, Kind
from homeostat.desired_state.instants import rfc3339
from homeostat.desired_state.models import ManifestBase, SpecBase, Strict
from homeostat.desired_state.state import ManifestError, Resource
from homeostat.desired_state.validation import PrefixIndex, per_region, where
from homeostat.reconcilers.actions import (
    Action,
    Finding,
    GaugeSpec,
    Measurement,
    Plan,
)
from homeostat.reconcilers.descriptor import KindDescriptor, Shared, example_of
from homeostat.reconcilers.rds_snapshots import (
    ClusterSnapshots,
)
from homeostat.reconcilers.snapshot_policy import (
    Deletion,
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
)

if TYPE_CHECKING:
    from homeostat.reconcilers.snapshot_retention_reconciler import SnapshotRetentionReconciler

KIND = Kind("SnapshotRetention")

MANAGED_BY_TAG = "managed-by"
MANAGED_BY_VALUE = "homeostat"
RESOURCE_TAG = "homeostat-resource"
NEWEST_AGE = GaugeSpec(
    "snapshot_newest_age_seconds", "Age of the newest available owned snapshot.", ("name",)
)
OWNED = GaugeSpec("snapshots_owned", "Owned snapshots (any state) of the retention policy.", ("name",))


class SnapshotAction(StrEnum):
    CREATE_SNAPSHOT = "create_snapshot"
    DELETE_SNAPSHOT = "delete_snapshot"


class RetentionPolicy(Strict):
    maxAge: Annotated[Duration, Field(description="Owned snapshots older than this are deleted.")]
    minKeep: Annotated[
        StrictInt, Field(ge=0, description="Never fewer owned, available snapshots than this.")
    ] = 1
    maxDeletionsPerRun: Annotated[
        StrictInt, Field(ge=1, le=1000, description="Safety cap on deletions per reconcile pass.")
    ] = 20


class SnapshotRetentionSpec(SpecBase):
    dbClusterIdentifier: Annotated[
        str,
        Field(pattern=r"^[A-Za-z][A-Za-z0-9-]{0,62}$", description="Aurora DB cluster identifier."),
    ]
    snapshotPrefix: Annotated[
        str,
        Field(
            pattern=r"^[A-Za-z][A-Za-z0-9-]{0,200}$",
            description="The manual snapshots this resource owns start with this prefix.",
        ),
    ]
    schedule: Annotated[CronExpression | None, Field(description="When to take a snapshot (cron).")] = None
    timeZone: Annotated[TimeZoneName, Field(description="IANA time zone of the schedule.")] = "UTC"
    startingDeadline: Annotated[
        Duration,
        # A string default, validated, so that the JSON Schema shows "1h" rather than ISO 8601.
        Field(
            default="1h", validate_default=True, description="A slot missed by less than this is still taken."
        ),
    ]
    retention: Annotated[RetentionPolicy, Field(description="Which owned snapshots to delete.")]
    protect: Annotated[
        tuple[Annotated[str, Field(min_length=1)], ...],
        Field(description="Glob patterns of snapshot identifiers never deleted."),
    ] = ()


class SnapshotRetention(ManifestBase):
    """Scheduled manual Aurora cluster snapshots and their retention.

    Example:
        apiVersion: homeostat/v1
        kind: SnapshotRetention
        metadata: {name: aurora-manual}
        spec:
          dbClusterIdentifier: omnirapeutic-production
          snapshotPrefix: omnirapeutic-prod-manual-
          schedule: "0 3 * * *"
          retention: {maxAge: 7d, minKeep: 1, maxDeletionsPerRun: 20}
          protect: ["omnirapeutic-emergency-*"]
    """

    kind: Literal["SnapshotRetention"]
    spec: SnapshotRetentionSpec


def rules_of(spec: SnapshotRetentionSpec) -> RetentionRules:
    return RetentionRules(
        cluster=DBClusterId(spec.dbClusterIdentifier),
        prefix=spec.snapshotPrefix,
        max_age=spec.retention.maxAge,
        min_keep=spec.retention.minKeep,
        max_deletions=spec.retention.maxDeletionsPerRun,
        protect=tuple(spec.protect),
    )


def deletion_action(name: str, deletion: Deletion) -> Action:
    snapshot = deletion.snapshot
    return Action(
        kind=KIND,
        name=name,
        action=SnapshotAction.DELETE_SNAPSHOT,
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
        kind=KIND,
        name=name,
        action=SnapshotAction.CREATE_SNAPSHOT,
        target=slot.snapshot_id,
        before={"snapshot": None},
        after={"snapshot": slot.snapshot_id},  # the slot is in the reason
        reason=f"scheduled slot {rfc3339(slot.slot, 'minutes')} ({spec.schedule} in {spec.timeZone}), {late}",
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
            f"missed slot {rfc3339(slot.slot, 'minutes')}: {describe_lateness(slot.lateness)} late, beyond "
            f"startingDeadline {human_duration(spec.startingDeadline)}; not taken"
        )
    if slot.next_slot is not None:
        notes.append(f"next slot {rfc3339(slot.next_slot, 'minutes')} ({spec.schedule} in {spec.timeZone})")
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
    age: float | None = None
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
            Measurement(NEWEST_AGE, labels, float("inf") if age is None else age),
            Measurement(OWNED, labels, float(len(owned_snapshots(observed.snapshots, rules)))),
        )
    if slot.state == SlotState.DUE:
        actions.append(creation_action(name, spec, slot))
    notes.extend(slot_notes(spec, slot))
    facts = {
        "cluster": spec.dbClusterIdentifier,
        "clusterStatus": observed.cluster_status,
        "newestSnapshotAgeSeconds": None if age is None else round(age),
        "nextSlot": None if slot.next_slot is None else rfc3339(slot.next_slot, "seconds"),
    }
    return Plan(
        KIND,
        name,
        actions=tuple(actions),
        error=error,
        notes=tuple(notes),
        measurements=measurements,
        findings=missed_slot_findings(name, spec, slot),
        facts=facts,
    )


def missed_slot_findings(name: str, spec: SnapshotRetentionSpec, slot: SlotDecision) -> tuple[Finding, ...]:
    """A slot missed beyond its deadline is recorded in the history once (the executor
    deduplicates), as a create_snapshot that failed; it is never taken late."""
    if slot.state != SlotState.MISSED or slot.slot is None:
        return ()
    return (
        Finding(
            kind=KIND,
            name=name,
            action=SnapshotAction.CREATE_SNAPSHOT,
            target=slot_snapshot_id(spec.snapshotPrefix, slot.slot),
            reason=f"scheduled slot {rfc3339(slot.slot, 'minutes')} ({spec.schedule} in {spec.timeZone})",
            error=(f"missed: beyond startingDeadline {human_duration(spec.startingDeadline)}; not taken"),
        ),
    )


def _reconciler(_shared: Shared) -> "SnapshotRetentionReconciler":
    # Imported here, not at the top: the reconciler imports this module (its model and plan),
    # and only a process that reconciles needs its AWS reads and calls.
    from homeostat.reconcilers.snapshot_retention_reconciler import SnapshotRetentionReconciler

    return SnapshotRetentionReconciler()


def overlapping_prefixes(resources: Sequence[Resource[Any]]) -> list[ManifestError]:
    """Two SnapshotRetention whose prefixes overlap are an error at the second, even on different
    clusters: on one cluster a snapshot would have two owners with different rules, and across
    clusters both would name their slot snapshots alike, while identifiers are unique per account
    and region (the second cluster's snapshot could never be created). Case-insensitive, as RDS
    stores identifiers in lower case. Linear: each prefix is looked up among the earlier ones."""
    errors: list[ManifestError] = []
    owners: list[Resource[SnapshotRetention]] = [r for r in resources if r.kind == KIND]
    earlier = PrefixIndex()
    for index, right in enumerate(owners):
        prefix = right.manifest.spec.snapshotPrefix
        first = earlier.first_overlapping(prefix.lower())
        if first is not None:
            left = owners[first]
            errors.append(
                ManifestError(
                    right.source.file,
                    right.source.line,
                    "spec.snapshotPrefix",
                    f"SnapshotRetention {right.name!r} prefix {prefix!r} overlaps "
                    f"{left.manifest.spec.snapshotPrefix!r} of SnapshotRetention {left.name!r} "
                    f"({where(left)}): snapshot identifiers are unique per account and region, "
                    "so one name would have two owners",
                )
            )
        earlier.add(prefix.lower(), index)
    return errors


DESCRIPTOR = KindDescriptor(
    kind=KIND,
    model=SnapshotRetention,
    order=40,
    example=example_of(SnapshotRetention),
    reconciler=None,
    make_reconciler=_reconciler,
    actions={
        # The create carries its tags (managed-by, homeostat-resource): RDS asks for AddTagsToResource.
        SnapshotAction.CREATE_SNAPSHOT: ("rds:CreateDBClusterSnapshot", "rds:AddTagsToResource"),
        SnapshotAction.DELETE_SNAPSHOT: ("rds:DeleteDBClusterSnapshot",),
    },
    observations=("rds:DescribeDBClusters", "rds:DescribeDBClusterSnapshots"),
    gauges=(NEWEST_AGE, OWNED),
    checks=(per_region(overlapping_prefixes),),
)
