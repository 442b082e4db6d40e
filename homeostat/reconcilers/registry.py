"""The reconcilers the operator runs, one per kind. Adding a kind adds one line here."""

from homeostat.desired_state.identifiers import Kind
from homeostat.reconcilers.base import Reconciler
from homeostat.reconcilers.ecs_service import ECSServiceReconciler
from homeostat.reconcilers.snapshot_retention import SnapshotRetentionReconciler


def default_reconcilers() -> dict[Kind, Reconciler]:
    reconcilers: list[Reconciler] = [ECSServiceReconciler()]
    reconcilers.append(SnapshotRetentionReconciler())
    return {r.kind: r for r in reconcilers}
