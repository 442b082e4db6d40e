"""The reconcilers the operator runs, one per kind. Adding a kind adds one line here."""

from homeostat.desired_state.identifiers import Kind
from homeostat.reconcilers.alarm_actions import AlarmActionsReconciler
from homeostat.reconcilers.base import Reconciler
from homeostat.reconcilers.ecs_service import ECSServiceReconciler
from homeostat.reconcilers.maintenance_window import MaintenanceWindowReconciler
from homeostat.reconcilers.snapshot_retention import SnapshotRetentionReconciler


def default_reconcilers() -> dict[Kind, Reconciler]:
    reconcilers: list[Reconciler] = [ECSServiceReconciler()]
    reconcilers.append(AlarmActionsReconciler())
    reconcilers.append(MaintenanceWindowReconciler())
    reconcilers.append(SnapshotRetentionReconciler())
    return {r.kind: r for r in reconcilers}
