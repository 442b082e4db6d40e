"""The SnapshotRetention reconciler: its AWS reads (observe) and calls (apply).

The kind (model, the pure plan, the checks, the descriptor) is `snapshot_retention`; this
module is imported only by a process that reconciles (`validate` and `schema` never do).
"""

import dataclasses
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import partial

from homeostat.desired_state.cron import next_fire
from homeostat.desired_state.state import DesiredState, Resource
from homeostat.reconcilers.actions import Action, ApplyResult, ObserveError, Plan
from homeostat.reconcilers.aws import AwsClients, aws_errors, describe_error, error_code, fan_out
from homeostat.reconcilers.base import Stages
from homeostat.reconcilers.rds_snapshots import (
    ClusterSnapshots,
    existing_clusters,
    list_cluster_snapshots,
    other_owner,
)
from homeostat.reconcilers.snapshot_retention import (
    KIND,
    SnapshotAction,
    SnapshotRetention,
    SnapshotRetentionSpec,
    plan_snapshots,
)

ALREADY_EXISTS = "DBClusterSnapshotAlreadyExistsFault"
SNAPSHOT_NOT_FOUND = "DBClusterSnapshotNotFoundFault"
QUOTA_EXCEEDED = "SnapshotQuotaExceeded"


class SnapshotRetentionReconciler:
    kinds = (KIND,)

    def observe(
        self,
        resources: Sequence[Resource[SnapshotRetention]],
        desired: DesiredState,
        aws: AwsClients,
        now: datetime,
    ) -> Mapping[str, ClusterSnapshots | ObserveError]:
        by_cluster: dict[str, list[Resource[SnapshotRetention]]] = defaultdict(list)
        for resource in resources:
            by_cluster[resource.manifest.spec.dbClusterIdentifier.lower()].append(resource)
        results: dict[str, ClusterSnapshots | ObserveError] = {}
        if not by_cluster:
            return results
        rds = aws.client("rds")
        try:
            present = existing_clusters(rds, list(by_cluster))
        except aws_errors() as exc:
            message = f"cannot check the DB clusters exist: {describe_error(exc)}"
            return {r.name: ObserveError(message) for r in resources}
        for cluster, members in by_cluster.items():
            if cluster not in present:
                for resource in members:
                    results[resource.name] = ObserveError(
                        f"DB cluster {resource.manifest.spec.dbClusterIdentifier} not found"
                    )
        # Each cluster's listing is independent: read concurrently (the shared budget paces them).
        listed = [cluster for cluster in by_cluster if cluster in present]
        for cluster, listing in zip(
            listed, fan_out(partial(list_cluster_snapshots, rds), listed), strict=True
        ):
            seen = dataclasses.replace(listing, cluster_status=present[cluster])
            for resource in by_cluster[cluster]:
                results[resource.name] = seen
        return results

    def diff(
        self, resource: Resource[SnapshotRetention], observed: ClusterSnapshots | ObserveError, now: datetime
    ) -> Plan:
        if isinstance(observed, ObserveError):
            return Plan(KIND, resource.name, error=observed.message)
        return plan_snapshots(resource.name, resource.manifest.spec, observed, now)

    def stages(self, actions: Sequence[Action]) -> Stages:
        """Each deletion is a unit of its own, sent concurrently; the create waits for them
        (they may free quota). minKeep needs no order among the deletions: every planned one
        lies outside the minKeep newest available snapshots (`select_deletions`), so whichever
        of them succeed or fail, minKeep remain; the executor sends exactly these, each once,
        so maxDeletionsPerRun holds as well."""
        deletions = [[a] for a in actions if a.action == SnapshotAction.DELETE_SNAPSHOT]
        others = [[a] for a in actions if a.action != SnapshotAction.DELETE_SNAPSHOT]
        return [stage for stage in (deletions, others) if stage]

    def apply(self, actions: Sequence[Action], aws: AwsClients) -> list[ApplyResult]:
        """Deletions first (they may free quota for the create), results in the given order."""
        order = sorted(range(len(actions)), key=lambda i: actions[i].action != SnapshotAction.DELETE_SNAPSHOT)
        results: dict[int, ApplyResult] = {}
        for index in order:
            results[index] = self._apply_one(actions[index], aws)
        return [results[i] for i in range(len(actions))]

    @staticmethod
    def _apply_one(action: Action, aws: AwsClients) -> ApplyResult:
        rds = aws.client("rds")
        try:
            if action.action == SnapshotAction.DELETE_SNAPSHOT:
                rds.delete_db_cluster_snapshot(**action.params)
            elif action.action == SnapshotAction.CREATE_SNAPSHOT:
                rds.create_db_cluster_snapshot(**action.params)
            else:
                raise ValueError(f"unknown action {action.action}")
        except aws_errors() as exc:
            code = error_code(exc)
            if action.action == SnapshotAction.DELETE_SNAPSHOT and code == SNAPSHOT_NOT_FOUND:
                return ApplyResult(action)  # already gone: the deletion is done
            if action.action == SnapshotAction.CREATE_SNAPSHOT and code == ALREADY_EXISTS:
                # This slot was taken already (restart, concurrent pass) -- if it is this
                # cluster's snapshot: identifiers are unique per account and region.
                return ApplyResult(action, other_owner(rds, action))
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
        for resource in desired.of_kind(KIND):
            spec: SnapshotRetentionSpec = resource.manifest.spec
            if spec.schedule is not None and not spec.held(now):
                instants.add(next_fire(spec.schedule, spec.timeZone, now))
        return sorted(instants)
