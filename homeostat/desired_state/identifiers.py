"""Closed vocabularies and identifier types shared by every layer above."""

from enum import StrEnum
from typing import NewType

Revision = NewType("Revision", str)
ResourceName = NewType("ResourceName", str)
ClusterName = NewType("ClusterName", str)
ServiceName = NewType("ServiceName", str)
DBClusterId = NewType("DBClusterId", str)
SnapshotId = NewType("SnapshotId", str)
AlarmName = NewType("AlarmName", str)

API_VERSION = "homeostat/v1"


class Kind(StrEnum):
    """The manifest kinds, spelled as in `kind:`."""

    ECS_SERVICE = "ECSService"
    SNAPSHOT_RETENTION = "SnapshotRetention"
    ALARM_ACTIONS = "AlarmActions"
    MAINTENANCE_WINDOW = "MaintenanceWindow"
