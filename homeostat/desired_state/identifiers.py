"""Closed vocabularies and identifier types shared by every layer above."""

from enum import StrEnum
from typing import NewType

Revision = NewType("Revision", str)
DBClusterId = NewType("DBClusterId", str)
SnapshotId = NewType("SnapshotId", str)
AlarmName = NewType("AlarmName", str)

API_VERSION = "homeostat/v1"


class Kind(StrEnum):
    """The manifest kinds, spelled as in `kind:` (contract strings): the closed vocabulary every
    layer shares. Each has exactly one descriptor in `homeostat.reconcilers.registry` (a
    meta-test checks it), which says everything else about the kind."""

    ECS_SERVICE = "ECSService"
    ECS_TASK_DEFINITION = "ECSTaskDefinition"
    SNAPSHOT_RETENTION = "SnapshotRetention"
    ALARM_ACTIONS = "AlarmActions"
    MAINTENANCE_WINDOW = "MaintenanceWindow"
    AURORA_CLUSTER = "AuroraCluster"
