"""The kind descriptor: everything about one kind, declared once, in its kind module.

A kind module (`ecs_service.py`, `snapshot_retention.py`, `alarm_actions.py`,
`maintenance_window.py`) ends with one `KindDescriptor`; `registry.py` lists
them, and everything else is derived from that list: the loader's kind table,
`homeostat schema`, the metric declarations, the IAM policy check, the
import-linter independence contract and the pass order. The meta-tests
(`tests/test_kinds_meta.py`) walk the registry and fail a kind that lacks an
example, an IAM permission, a gauge declaration or a schema entry.
"""

import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

from homeostat.desired_state.identifiers import Kind
from homeostat.desired_state.models import ManifestBase
from homeostat.desired_state.validation import Bond, CrossCheck, Resolve
from homeostat.reconcilers.actions import GaugeSpec
from homeostat.reconcilers.alarm_state import Contribute
from homeostat.reconcilers.base import Reconciler
from homeostat.reconcilers.rollouts import Recall

M = TypeVar("M", bound=ManifestBase)
T = TypeVar("T")

# IAM actions ("service:Operation") an action or an observation needs.
Permissions = tuple[str, ...]


def example_of(model: type[ManifestBase]) -> str:
    """The example manifest in a kind model's docstring (the indented block after `Example:`).

    The docstring is the one place a kind's example is written: editors show it (it is the
    schema's description), the descriptor hands it to the meta-tests, which validate it.
    """
    lines = (model.__doc__ or "").splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == "Example:"), None)
    if start is None:
        return ""
    indent = len(lines[start]) - len(lines[start].lstrip())
    block = []
    for line in lines[start + 1 :]:
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        block.append(line)
    return textwrap.dedent("\n".join(block)).strip() + "\n"


class Shared:
    """One process wiring (`registry.default_reconcilers`): what reconcilers that remember
    across passes share, one value per type, created on first use. A cache lives here, not in
    a module, so each wiring (a process, a test) starts empty."""

    def __init__(self, recall: Recall | None = None) -> None:
        self._shared: dict[Callable[[], Any], Any] = {}
        # The history database, read-only (None: `plan`, which has none): memory across restarts.
        self.recall = recall

    def get(self, kind: Callable[[], T]) -> T:
        """The wiring's one value made by `kind` (a class taking no arguments)."""
        if kind not in self._shared:
            self._shared[kind] = kind()
        value: T = self._shared[kind]
        return value


@dataclass(frozen=True, slots=True)
class KindDescriptor(Generic[M]):
    """One kind: model, reconciler, actions and their IAM permissions, gauges, checks, example.

    `order` places the kind in the pass (lower first); it is declared, not taken from the
    registry's line order. `reconciler` is the kind's own (None when only a shared
    reconciler plans for it, as the alarm reconciler does for AlarmActions).
    `actions` maps each action the kind's resources can record to the IAM actions it
    needs; `observations` are the IAM actions observing the kind needs.
    `make_reconciler` replaces `reconciler` for a kind whose reconciler remembers across
    passes (a cache): it is built once per wiring. `after` lists the kinds whose worker must
    have finished, in a pass, before this kind's starts (ECSService after ECSTaskDefinition:
    the pass that registers a revision also moves the service to it); they must come earlier
    in the pass order. `resolve` completes a manifest from the files it names (the loader's
    hook, `validation.Resolve`). `bonds` name the pairs of resources one `--selector` shard
    must hold together (`selector.select`). `corrections` are the actions that hold a value
    against drift, each field of their `after` a value something else can keep changing back:
    what fight detection (operator/fights.py) counts.
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
    make_reconciler: Callable[[Shared], Reconciler[M, Any]] | None = None
    after: tuple[Kind, ...] = ()
    resolve: Resolve | None = None
    bonds: tuple[Bond, ...] = ()
    corrections: tuple[StrEnum, ...] = ()

    @property
    def module(self) -> str:
        """The kind module (where the model is declared): what the independence contract lists."""
        return self.model.__module__
