"""The kind descriptor: everything about one kind, declared once, in its kind module.

A kind module (`ecs_service.py`, `snapshot_retention.py`, `alarm_actions.py`,
`maintenance_window.py`) ends with one `KindDescriptor`; `registry.py` lists
them, and everything else is derived from that list: the loader's kind table,
`homeostat schema`, the metric declarations, the IAM policy check, the
import-linter independence contract and the pass order. The meta-tests
(`tests/test_kinds_meta.py`) walk the registry and fail a kind that lacks an
example, an IAM permission, a gauge declaration or a schema entry.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

from homeostat.desired_state.identifiers import Kind
from homeostat.desired_state.models import ManifestBase
from homeostat.desired_state.validation import CrossCheck
from homeostat.reconcilers.actions import GaugeSpec
from homeostat.reconcilers.alarm_state import Contribute
from homeostat.reconcilers.base import Reconciler

M = TypeVar("M", bound=ManifestBase)

# IAM actions ("service:Operation") an action or an observation needs.
Permissions = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class KindDescriptor(Generic[M]):
    """One kind: model, reconciler, actions and their IAM permissions, gauges, checks, example.

    `order` places the kind in the pass (lower first); it is declared, not taken from the
    registry's line order. `reconciler` is the kind's own (None when only a shared
    reconciler plans for it, as the alarm reconciler does for AlarmActions).
    `actions` maps each action the kind's resources can record to the IAM actions it
    needs; `observations` are the IAM actions observing the kind needs.
    """

    kind: Kind
    model: type[M]
    order: int
    example: str
    reconciler: Reconciler[M, Any] | None
    actions: Mapping[StrEnum, Permissions]
    observations: Permissions
    gauges: tuple[GaugeSpec, ...] = ()
    checks: tuple[CrossCheck, ...] = ()
    alarm_rules: Contribute | None = None

    @property
    def module(self) -> str:
        """The kind module (where the model is declared): what the independence contract lists."""
        return self.model.__module__
