"""AlarmActions: the declared actionsEnabled of CloudWatch alarms selected by prefix or names.

The kind contributes one alarm policy per resource (rule 2 of the contract) to the one
alarm reconciler (`alarms.py`), which lists, decides, plans and applies for it: changes
carry the reason `drift` (or `maintenance window X ended` when that window's end is what
turned the alarm back on); a by-name selector naming an alarm that does not exist is an
error of this resource (the alarms that do exist are still reconciled).
Cross-document check: two AlarmActions that can select one alarm with different values
are an error at the second.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool

from homeostat.desired_state.identifiers import Kind
from homeostat.desired_state.models import AlarmSelector, ManifestBase, SpecBase
from homeostat.desired_state.state import ManifestError, Resource
from homeostat.desired_state.validation import PrefixIndex, per_region, where
from homeostat.reconcilers.alarm_state import AlarmPolicy
from homeostat.reconcilers.alarms import (
    ALARM_CORRECTIONS,
    ALARM_OBSERVATIONS,
    ALARM_PERMISSIONS,
    ALARMS_MANAGED,
)
from homeostat.reconcilers.descriptor import KindDescriptor, example_of

KIND = Kind("AlarmActions")


class AlarmActionsSpec(AlarmSelector, SpecBase):
    actionsEnabled: Annotated[StrictBool, Field(description="Desired ActionsEnabled of the selected alarms.")]


class AlarmActions(ManifestBase):
    """Desired ActionsEnabled of CloudWatch alarms selected by prefix or names.

    Example:
        apiVersion: homeostat/v1
        kind: AlarmActions
        metadata: {name: production-alarms}
        spec:
          alarmNamePrefix: omnirapeutic-production
          actionsEnabled: true
    """

    kind: Literal["AlarmActions"]
    spec: AlarmActionsSpec


def policy_of(resource: Resource[AlarmActions], now: datetime) -> AlarmPolicy:
    """The alarm policy one AlarmActions contributes at `now`. Pure."""
    spec = resource.manifest.spec
    held = spec.held(now)
    return AlarmPolicy(
        KIND,
        resource.name,
        spec,
        spec.actionsEnabled,
        live=not (held or spec.dryRun),
        suspended=held,
    )


def conflicting_values(resources: Sequence[Resource[Any]]) -> list[ManifestError]:
    """Two AlarmActions that can select one alarm (by name or prefix) with different
    actionsEnabled: an error at the second, naming the first it conflicts with. Linear:
    each declaration is looked up in indexes of the earlier ones of the other value."""
    errors: list[ManifestError] = []
    declared: list[Resource[AlarmActions]] = [r for r in resources if r.kind == KIND]
    prefixes = {True: PrefixIndex(), False: PrefixIndex()}  # by actionsEnabled
    names = {True: PrefixIndex(), False: PrefixIndex()}
    for index, resource in enumerate(declared):
        spec = resource.manifest.spec
        other_prefixes, other_names = prefixes[not spec.actionsEnabled], names[not spec.actionsEnabled]
        if spec.alarmNamePrefix is not None:
            found = [
                other_prefixes.first_overlapping(spec.alarmNamePrefix),
                other_names.first_extending(spec.alarmNamePrefix),
            ]
        else:
            found = [other_prefixes.first_prefix_of(n) for n in spec.alarmNames or ()]
            found += [other_names.first_exact(n) for n in spec.alarmNames or ()]
        first = min((i for i in found if i is not None), default=None)
        if first is not None:
            left = declared[first]
            errors.append(
                ManifestError(
                    resource.source.file,
                    resource.source.line,
                    "spec",
                    f"AlarmActions {resource.name!r} conflicts with AlarmActions {left.name!r} "
                    f"({where(left)}): they select the same alarms with different actionsEnabled",
                )
            )
        if spec.alarmNamePrefix is not None:
            prefixes[spec.actionsEnabled].add(spec.alarmNamePrefix, index)
        for name in spec.alarmNames or ():
            names[spec.actionsEnabled].add(name, index)
    return errors


DESCRIPTOR = KindDescriptor(
    kind=KIND,
    model=AlarmActions,
    order=20,
    example=example_of(AlarmActions),
    reconciler=None,  # the one alarm reconciler plans for it (alarm_rules)
    actions=ALARM_PERMISSIONS,
    corrections=ALARM_CORRECTIONS,
    observations=ALARM_OBSERVATIONS,
    gauges=(ALARMS_MANAGED,),
    checks=(per_region(conflicting_values),),
    alarm_rules=policy_of,
)
