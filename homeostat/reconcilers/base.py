"""The reconciler protocol every kind module implements.

The loop (operator) calls, per pass and kind: `observe` once for all
resources of the kind, `diff` per resource (pure), then hands the actions
to its executor, which calls `apply` unless the action is a dry run or a
conflict. `wake_times` tells the daemon when a timed pass is needed.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import ClassVar, Protocol

from homeostat.desired_state.identifiers import Kind
from homeostat.desired_state.state import DesiredState, Resource
from homeostat.reconcilers.actions import Action, ApplyResult, Plan
from homeostat.reconcilers.aws import AwsClients


class Reconciler(Protocol):
    kind: ClassVar[Kind]

    def observe(
        self, resources: Sequence[Resource], desired: DesiredState, aws: AwsClients, now: datetime
    ) -> Mapping[str, object]:
        """Live state per resource name, read in batches; failures are ObserveError values."""
        ...

    def diff(self, resource: Resource, observed: object, now: datetime) -> Plan:
        """Pure: desired vs observed at `now`, as a Plan."""
        ...

    def apply(self, actions: Sequence[Action], aws: AwsClients) -> list[ApplyResult]:
        """Execute the actions (batching where AWS allows); one result per action, in order."""
        ...

    def wake_times(self, desired: DesiredState, now: datetime) -> list[datetime]:
        """Instants after `now` at which this kind needs a pass (schedule slots, window edges)."""
        ...
