"""The registry of kinds: one line per kind. Everything else is derived from it.

Adding a kind is one kind module (its model, reconciler, actions with their IAM
permissions, gauges, cross-document checks, documented example and pass order, in one
`KindDescriptor`, whose `kind` the module declares as `KIND = Kind("...")`) and one line
in `KINDS` below. Derived here: the loader's kind table, the schema's models, the
metric declarations, the reconcilers in pass order (with the one alarm reconciler for
every kind that contributes alarm rules) and the kind modules the import-linter
independence contract must list. `tests/test_kinds_meta.py` walks this registry.

Importing this module imports no AWS library (contract: `validate` and `schema` need
none): botocore is imported lazily where a call is made.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from homeostat.desired_state.identifiers import Kind
from homeostat.desired_state.models import ManifestBase
from homeostat.desired_state.validation import Bond, KindTable
from homeostat.reconcilers import (
    alarm_actions,
    aurora_cluster,
    ecs_service,
    ecs_task_definition,
    maintenance_window,
    snapshot_retention,
)
from homeostat.reconcilers.actions import GaugeSpec
from homeostat.reconcilers.alarms import AlarmReconciler, alarm_bond
from homeostat.reconcilers.base import AnyReconciler
from homeostat.reconcilers.descriptor import KindDescriptor, Shared
from homeostat.reconcilers.rollouts import Recall

Registry = Sequence[KindDescriptor[Any]]

# The line order is the order of `homeostat schema`; the pass order is each descriptor's `order`.
KINDS: Registry = (
    ecs_service.DESCRIPTOR,
    ecs_task_definition.DESCRIPTOR,
    snapshot_retention.DESCRIPTOR,
    alarm_actions.DESCRIPTOR,
    maintenance_window.DESCRIPTOR,
    aurora_cluster.DESCRIPTOR,
)


def in_pass_order(registry: Registry = KINDS) -> list[KindDescriptor[Any]]:
    return sorted(registry, key=lambda d: d.order)


def kind_table(registry: Registry = KINDS) -> KindTable:
    """What the loader accepts: each kind's model and every kind's cross-document checks."""
    ordered = in_pass_order(registry)
    return KindTable(
        models={d.kind: d.model for d in ordered},
        checks=tuple(check for d in ordered for check in d.checks),
        resolvers={d.kind: d.resolve for d in ordered if d.resolve is not None},
    )


def shard_bonds(registry: Registry = KINDS) -> tuple[Bond, ...]:
    """The pairs a `--selector` shard must hold together: each kind's bonds, and the alarm
    rules' (every contributing kind's resources that can select one alarm)."""
    contributors = {d.kind: d.alarm_rules for d in in_pass_order(registry) if d.alarm_rules is not None}
    own = tuple(bond for d in in_pass_order(registry) for bond in d.bonds)
    return (*own, alarm_bond(contributors)) if contributors else own


def dependencies(registry: Registry = KINDS) -> Mapping[Kind, tuple[Kind, ...]]:
    """The kinds each kind's worker waits for in a pass (`KindDescriptor.after`).

    A dependency must come earlier in the pass order, so the waits can never form a cycle.
    """
    position = {d.kind: d.order for d in registry}
    for descriptor in registry:
        for kind in descriptor.after:
            if position.get(kind, descriptor.order) >= descriptor.order:
                raise ValueError(
                    f"{descriptor.kind} runs after {kind}, which is not earlier in the pass order"
                )
    return {d.kind: d.after for d in in_pass_order(registry) if d.after}


def schema_models(registry: Registry = KINDS) -> list[type[ManifestBase]]:
    """The kind models for `homeostat schema`, in the registry's line order (a stable schema)."""
    return [d.model for d in registry]


def gauges(registry: Registry = KINDS) -> tuple[GaugeSpec, ...]:
    """Every gauge the kinds set, once each; two different gauges of one name are an error."""
    found: dict[str, GaugeSpec] = {}
    for descriptor in in_pass_order(registry):
        for gauge in descriptor.gauges:
            if found.setdefault(gauge.name, gauge) != gauge:
                raise ValueError(f"two different gauges are named {gauge.name!r}")
    return tuple(found.values())


def corrections(registry: Registry = KINDS) -> frozenset[str]:
    """The actions of every kind that hold a value against drift: what a fight is counted in."""
    return frozenset(str(action) for descriptor in registry for action in descriptor.corrections)


def default_reconcilers(
    registry: Registry = KINDS, recall: Recall | None = None
) -> tuple[AnyReconciler, ...]:
    """The reconcilers in pass order: each kind's own (stateless, or built for this wiring when
    it remembers: `make_reconciler`), and a new alarm reconciler
    (it remembers its last listing) placed at the first kind contributing alarm rules,
    planning for every such kind. One call per process wiring: `run`, `plan`, `demo`."""
    reconcilers: list[AnyReconciler] = []
    shared = Shared(recall)
    contributors = {d.kind: d.alarm_rules for d in in_pass_order(registry) if d.alarm_rules is not None}
    alarms = AlarmReconciler(contributors) if contributors else None
    for descriptor in in_pass_order(registry):
        if alarms is not None and descriptor.kind in contributors and alarms not in reconcilers:
            reconcilers.append(alarms)
        own = descriptor.make_reconciler(shared) if descriptor.make_reconciler else descriptor.reconciler
        if own is not None:
            reconcilers.append(own)
    return tuple(reconcilers)


def kind_modules(registry: Registry = KINDS) -> list[str]:
    """The kind modules, which must not import each other (the import-linter independence list)."""
    return [d.module for d in in_pass_order(registry)]
