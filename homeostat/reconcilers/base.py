"""The reconciler protocol, and how two reconcilers' plans for one resource become one.

The loop (operator) calls, per pass and reconciler: `observe` once for all
resources of the kinds it plans for (`kinds`), `diff` per resource (pure),
then hands the actions to its executor, which calls `apply` unless the action
is a dry run or a conflict. `wake_times` tells the daemon when a timed pass is
needed. Most kinds have one reconciler of their own; the one alarm reconciler
(`alarms.py`) plans for every kind that contributes alarm rules, so a
MaintenanceWindow resource gets two plans (its own: timing, gauge; the alarm
reconciler's: alarm changes; and its own pending Aurora maintenance), which `merge_plans`
joins; when both planned actions, `Routed` sends each with the reconciler that planned it.

Generic over the manifest model and the observation type, so a kind's `diff`
reads its own spec and observation without isinstance (and a descriptor's
reconciler must accept that descriptor's model).
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

from homeostat.desired_state.identifiers import Kind
from homeostat.desired_state.models import ManifestBase
from homeostat.desired_state.state import DesiredState, Resource
from homeostat.reconcilers.actions import Action, ApplyResult, ObserveError, Plan
from homeostat.reconcilers.aws import AwsClients

ManifestT_contra = TypeVar("ManifestT_contra", bound=ManifestBase, contravariant=True)
ObservedT = TypeVar("ObservedT")


class Reconciler(Protocol[ManifestT_contra, ObservedT]):
    @property
    def kinds(self) -> tuple[Kind, ...]:
        """The kinds whose resources this reconciler plans for (observes and diffs)."""
        ...

    def observe(
        self,
        resources: Sequence[Resource[ManifestT_contra]],
        desired: DesiredState,
        aws: AwsClients,
        now: datetime,
    ) -> Mapping[str, ObservedT | ObserveError]:
        """Live state per resource name, read in batches; failures are ObserveError values."""
        ...

    def diff(
        self, resource: Resource[ManifestT_contra], observed: ObservedT | ObserveError, now: datetime
    ) -> Plan:
        """Pure: desired vs observed at `now`, as a Plan."""
        ...

    def apply(self, actions: Sequence[Action], aws: AwsClients) -> list[ApplyResult]:
        """Execute the actions (batching where AWS allows); one result per action, in order."""
        ...

    def wake_times(self, desired: DesiredState, now: datetime) -> list[datetime]:
        """Instants after `now` at which this kind needs a pass (schedule slots, window edges)."""
        ...


AnyReconciler = Reconciler[Any, Any]
# Stages in order; the units of one stage may be sent at once, each unit by one `apply` call.
Stages = list[list[list[Action]]]


@runtime_checkable
class Staged(Protocol):
    """A reconciler whose actions of one resource need not be sent one after another.

    The executor sends the units of a stage concurrently (a bounded pool, `--concurrency`)
    and starts a stage once the previous one has answered, so an order that matters (a
    snapshot's deletions free quota before its create) is a stage boundary. A reconciler
    without `stages` gets one unit: one `apply` call with all of a resource's actions.
    """

    def stages(self, actions: Sequence[Action]) -> Stages:
        """Every given action exactly once (the same objects), split into stages of units."""
        ...


def merge_plans(plans: Sequence[Plan]) -> Plan:
    """One resource's plans from several reconcilers, as one plan: actions, notes,
    measurements and findings in the given order; the first error wins; facts are
    joined, the first plan's value winning for a key two plans set. Pure."""
    first = plans[0]
    if len(plans) == 1:
        return first
    return Plan(
        first.kind,
        first.name,
        actions=tuple(a for p in plans for a in p.actions),
        error=next((p.error for p in plans if p.error is not None), None),
        notes=tuple(n for p in plans for n in p.notes),
        measurements=tuple(m for p in plans for m in p.measurements),
        findings=tuple(f for p in plans for f in p.findings),
        facts={k: v for p in reversed(plans) for k, v in p.facts.items()},
        rollout=next((p.rollout for p in plans if p.rollout is not None), None),
    )


class Routed:
    """One resource's actions planned by several reconcilers, each sent by the one that planned
    it (a MaintenanceWindow starting: the alarm reconciler's alarm calls and the window's own
    pending maintenance, in one pass). The executor uses `apply` and `stages` only; the rest
    is the first reconciler's, so a Routed is still a Reconciler."""

    def __init__(self, parts: Sequence[tuple[AnyReconciler, Plan]]) -> None:
        self._first = parts[0][0]
        self._owners = [(reconciler, {id(a) for a in plan.actions}) for reconciler, plan in parts]

    @property
    def kinds(self) -> tuple[Kind, ...]:
        return tuple(self._first.kinds)

    def observe(
        self, resources: Sequence[Resource[Any]], desired: DesiredState, aws: AwsClients, now: datetime
    ) -> Mapping[str, Any]:
        return self._first.observe(resources, desired, aws, now)

    def diff(self, resource: Resource[Any], observed: Any, now: datetime) -> Plan:
        return self._first.diff(resource, observed, now)

    def wake_times(self, desired: DesiredState, now: datetime) -> list[datetime]:
        return self._first.wake_times(desired, now)

    def _owner(self, action: Action) -> AnyReconciler:
        return next(r for r, planned in self._owners if id(action) in planned)

    def stages(self, actions: Sequence[Action]) -> Stages:
        """Each owner's stages (one unit for an owner without), stage k of all of them together."""
        split: list[Stages] = []
        for reconciler, planned in self._owners:
            mine = [a for a in actions if id(a) in planned]
            if mine:
                split.append(reconciler.stages(mine) if isinstance(reconciler, Staged) else [[mine]])
        depth = max((len(s) for s in split), default=0)
        return [[unit for s in split if level < len(s) for unit in s[level]] for level in range(depth)]

    def apply(self, actions: Sequence[Action], aws: AwsClients) -> list[ApplyResult]:
        """One unit of `stages`: all of one owner's, sent by that owner."""
        return self._owner(actions[0]).apply(actions, aws) if actions else []
