"""Helpers shared by the alarm tests and benchmark: manifests, moto alarms, one pass without the daemon."""

import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from homeostat.desired_state.identifiers import Kind
from homeostat.desired_state.loading import load_directory
from homeostat.desired_state.state import DesiredState
from homeostat.operator.passes import observe_and_diff
from homeostat.reconcilers import alarm_actions, maintenance_window
from homeostat.reconcilers.actions import ApplyResult, Plan
from homeostat.reconcilers.aws import AwsClients
from homeostat.reconcilers.base import AnyReconciler
from homeostat.reconcilers.registry import default_reconcilers, kind_table

REGION = "us-east-1"


def alarm_reconcilers() -> tuple[AnyReconciler, ...]:
    """The reconcilers of the two alarm kinds, as the registry wires them (a new process's)."""
    return default_reconcilers((alarm_actions.DESCRIPTOR, maintenance_window.DESCRIPTOR))


def alarm_actions_yaml(name: str, select: str, enabled: bool = True, extra: str = "") -> str:
    return (
        textwrap.dedent(
            f"""\
        apiVersion: homeostat/v1
        kind: AlarmActions
        metadata:
          name: {name}
        spec:
          {select}
          actionsEnabled: {str(enabled).lower()}
        """
        )
        + extra
    )


def one_off_window_yaml(name: str, start: datetime, end: datetime, select: str) -> str:
    return textwrap.dedent(
        f"""\
        apiVersion: homeostat/v1
        kind: MaintenanceWindow
        metadata:
          name: {name}
        spec:
          start: "{start.isoformat()}"
          end: "{end.isoformat()}"
          silenceAlarms:
            - {select}
        """
    )


def weekly_window_yaml(name: str, select: str, schedule: str = "0 2 * * SUN") -> str:
    return textwrap.dedent(
        f"""\
        apiVersion: homeostat/v1
        kind: MaintenanceWindow
        metadata:
          name: {name}
        spec:
          schedule: "{schedule}"
          duration: 4h
          timeZone: UTC
          silenceAlarms:
            - {select}
        """
    )


def write_desired(directory: Path, documents: Mapping[str, str]) -> DesiredState:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in documents.items():
        (directory / name).write_text(text)
    return load_directory(directory, kinds=kind_table())


def put_alarms(cloudwatch: Any, names: list[str], *, enabled: bool = True) -> None:
    for name in names:
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            MetricName="CPUUtilization",
            Namespace="AWS/ECS",
            Statistic="Average",
            Period=60,
            EvaluationPeriods=1,
            Threshold=80.0,
            ComparisonOperator="GreaterThanThreshold",
            ActionsEnabled=enabled,
        )


def put_composite_alarms(names: list[str], rule_of: str, *, enabled: bool = True) -> None:
    """Composite alarms in the in-process moto backend (under mock_aws).

    moto 5.2.5 does not implement PutCompositeAlarm; its backend stores an alarm
    with a `rule` as composite and DescribeAlarms returns it under CompositeAlarms.
    """
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    backend = cloudwatch_backends[DEFAULT_ACCOUNT_ID][REGION]
    for name in names:
        backend.put_metric_alarm(
            name=name,
            namespace="",
            metric_name="",
            comparison_operator="",
            evaluation_periods=1,
            period=60,
            threshold=0.0,
            statistic="",
            description="",
            dimensions=[],
            alarm_actions=[],
            actions_enabled=enabled,
            rule=f'ALARM("{rule_of}")',
        )


def actions_enabled(cloudwatch: Any, prefix: str) -> dict[str, bool]:
    """Every alarm under the prefix (metric and composite) and its ActionsEnabled, read from AWS."""
    query = {"AlarmNamePrefix": prefix} if prefix else {}
    response = cloudwatch.describe_alarms(**query, AlarmTypes=["MetricAlarm", "CompositeAlarm"])
    return {
        item["AlarmName"]: item["ActionsEnabled"]
        for key in ("MetricAlarms", "CompositeAlarms")
        for item in response.get(key, [])
    }


@dataclass
class ParamLog:
    """API parameters of every call, as the caller passed them (botocore before-parameter-build).

    conftest's CallLog reads the serialized body, which for CloudWatch (smithy
    rpc-v2-cbor) is bytes, so it sees no parameters; this log sees them.
    """

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def hook(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, dict(params)))

    def attach(self, client: Any) -> Any:
        client.meta.events.register("before-parameter-build.cloudwatch.*", self.hook)
        return client

    def of(self, operation: str) -> list[dict[str, Any]]:
        return [params for op, params in self.calls if op == operation]

    def operations(self) -> set[str]:
        return {op for op, _ in self.calls}


class RecordingClients:
    """An AwsClients (for use under mock_aws) that records the parameters of every CloudWatch call."""

    def __init__(self) -> None:
        import boto3

        self.log = ParamLog()
        self._cloudwatch = self.log.attach(boto3.Session(region_name=REGION).client("cloudwatch"))

    def client(self, service: str) -> Any:
        assert service == "cloudwatch", service
        return self._cloudwatch


@dataclass
class PassResult:
    plans: dict[tuple[str, str], Plan]
    results: list[ApplyResult]

    def plan(self, kind: Kind, name: str) -> Plan:
        return self.plans[(str(kind), name)]

    @property
    def actions(self) -> list[Any]:
        return [a for p in self.plans.values() for a in p.actions]


def reconcile(
    desired: DesiredState,
    aws: AwsClients,
    now: datetime,
    *,
    apply: bool = True,
    reconcilers: tuple[AnyReconciler, ...] | None = None,
) -> PassResult:
    """One pass of the alarm kinds as the operator runs it: observe each kind, diff, apply each plan.
    Without `reconcilers`, the pass of a new process (no earlier pass to remember)."""
    planned, _ = observe_and_diff(desired, reconcilers or alarm_reconcilers(), aws, now)
    plans: dict[tuple[str, str], Plan] = {}
    results: list[ApplyResult] = []
    for reconciler, resource, plan in planned:
        plans[(str(resource.kind), resource.name)] = plan
        if apply and plan.actions and not resource.manifest.spec.dryRun:
            results.extend(reconciler.apply(plan.actions, aws))
    return PassResult(plans, results)
