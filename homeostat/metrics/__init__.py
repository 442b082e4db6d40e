"""Every Prometheus metric homeostat exports, defined in this one module.

A leaf: imports nothing from homeostat. Built against a given registry so
tests use a fresh one; the daemon uses the process default. The per-kind
gauges are declared from the specs handed in (the kind descriptors' GaugeSpecs,
given by the operator), so a kind's gauge exists exactly when the kind does.
"""

import contextlib
from collections.abc import Iterable, Mapping
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PREFIX = "homeostat"


class GaugeDeclaration(Protocol):
    """A gauge a kind sets: `homeostat_<name>` with these label names (a kind's GaugeSpec)."""

    @property
    def name(self) -> str: ...
    @property
    def help(self) -> str: ...
    @property
    def labels(self) -> tuple[str, ...]: ...


class UndeclaredGauge(LookupError):
    """A measurement names a gauge no kind declared: a bug to fail on, never a dropped value."""


class Metrics:
    """The contract's metrics (section 5) plus the per-kind gauges of later sections."""

    def __init__(self, registry: CollectorRegistry, gauges: Iterable[GaugeDeclaration]) -> None:
        self.registry = registry
        self.reconcile_total = Counter(
            "reconcile_total",
            "Resource reconciles by kind and result (success|error|skipped).",
            ["kind", "result"],
            namespace=PREFIX,
            registry=registry,
        )
        self.reconcile_duration_seconds = Histogram(
            "reconcile_duration_seconds",
            "Time to observe, diff and apply one kind in a pass.",
            ["kind"],
            namespace=PREFIX,
            registry=registry,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
        )
        self.resource_in_sync = Gauge(
            "resource_in_sync",
            "1 when the resource matches its manifest after the last pass.",
            ["kind", "name"],
            namespace=PREFIX,
            registry=registry,
        )
        self.resource_suspended = Gauge(
            "resource_suspended",
            "1 while the resource is held by `suspend` (true or a bounded hold), 0 otherwise.",
            ["kind", "name"],
            namespace=PREFIX,
            registry=registry,
        )
        self.suspension_expiry_timestamp_seconds = Gauge(
            "suspension_expiry_timestamp_seconds",
            "Unix time a bounded hold ends; only while the resource is held by one.",
            ["kind", "name"],
            namespace=PREFIX,
            registry=registry,
        )
        self.resource_fighting = Gauge(
            "resource_fighting",
            "1 while something else keeps changing the resource back: its corrections are withheld.",
            ["kind", "name"],
            namespace=PREFIX,
            registry=registry,
        )
        self.fights_total = Counter(
            "fights_total",
            "Fights detected (a field corrected --fight-threshold times, changed back each time), by kind.",
            ["kind"],
            namespace=PREFIX,
            registry=registry,
        )
        self.actions_total = Counter(
            "actions_total",
            "Actions by kind, action and outcome (applied|failed|dry_run|conflict).",
            ["kind", "action", "outcome"],
            namespace=PREFIX,
            registry=registry,
        )
        self.aws_api_calls_total = Counter(
            "aws_api_calls_total",
            "AWS API calls by service, operation and result (ok|error|throttled).",
            ["service", "operation", "result"],
            namespace=PREFIX,
            registry=registry,
        )
        self.api_budget_wait_seconds_total = Counter(
            "api_budget_wait_seconds_total",
            "Seconds AWS requests waited for the shared rate budget (--api-rate), by service.",
            ["service"],
            namespace=PREFIX,
            registry=registry,
        )
        self.desired_state_valid = Gauge(
            "desired_state_valid",
            "1 when the latest revision of the desired state is valid.",
            namespace=PREFIX,
            registry=registry,
        )
        self.desired_state_loads_total = Counter(
            "desired_state_loads_total",
            "Loads of the desired-state directory by result (valid|invalid).",
            ["result"],
            namespace=PREFIX,
            registry=registry,
        )
        self.desired_state_revision_info = Gauge(
            "desired_state_revision_info",
            "1 for the revision in force.",
            ["revision"],
            namespace=PREFIX,
            registry=registry,
        )
        self.last_pass_timestamp_seconds = Gauge(
            "last_pass_timestamp_seconds",
            "Unix time the last reconcile pass finished.",
            namespace=PREFIX,
            registry=registry,
        )
        self.leader = Gauge(
            "leader",
            "1 while this daemon holds the single-writer lease; 0 while it waits as a standby.",
            namespace=PREFIX,
            registry=registry,
        )
        self.resync_seconds = Gauge(
            "resync_seconds",
            "The daemon's --resync period (alerts compare pass age with 3 of them).",
            namespace=PREFIX,
            registry=registry,
        )
        self.build_info = Gauge(
            "build_info",
            "Always 1; the version label says which build runs.",
            ["version"],
            namespace=PREFIX,
            registry=registry,
        )
        self.gauges: dict[str, Gauge] = {}
        self._labels: dict[str, tuple[str, ...]] = {}
        for spec in gauges:
            self.gauges[spec.name] = Gauge(
                spec.name, spec.help, list(spec.labels), namespace=PREFIX, registry=registry
            )
            self._labels[spec.name] = spec.labels

    def count_budget_wait(self, service: str, seconds: float) -> None:
        self.api_budget_wait_seconds_total.labels(service=service).inc(seconds)

    def set_revision(self, revision: str) -> None:
        self.desired_state_revision_info.clear()
        self.desired_state_revision_info.labels(revision=revision).set(1)

    def _gauge(self, spec: GaugeDeclaration) -> Gauge:
        gauge = self.gauges.get(spec.name)
        if gauge is None or self._labels[spec.name] != spec.labels:
            raise UndeclaredGauge(f"gauge {spec.name!r} with labels {spec.labels} is not declared")
        return gauge

    def remove_measurement(self, metric: GaugeDeclaration, labels: Mapping[str, str]) -> None:
        """Drop one labelled series of a reconciler-observed gauge (its resource is gone)."""
        if not labels:
            return
        gauge = self._gauge(metric)
        with contextlib.suppress(KeyError):  # never set, or removed already
            gauge.remove(*(labels[name] for name in metric.labels))

    def set_measurement(self, metric: GaugeDeclaration, labels: Mapping[str, str], value: float) -> None:
        """Set a reconciler-observed gauge; raises UndeclaredGauge for a gauge no kind declared."""
        gauge = self._gauge(metric)
        (gauge.labels(**labels) if labels else gauge).set(value)
