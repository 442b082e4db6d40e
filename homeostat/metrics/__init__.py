"""Every Prometheus metric homeostat exports, defined in this one module.

A leaf: imports nothing from homeostat. Built against a given registry so
tests use a fresh one; the daemon uses the process default.
"""

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PREFIX = "homeostat"


# The label names of each reconciler-observed gauge, in declaration order.
MEASUREMENT_LABELS: dict[str, tuple[str, ...]] = {
    "maintenance_window_active": ("name",),
    "snapshot_newest_age_seconds": ("name",),
    "snapshots_owned": ("name",),
    "alarms_managed": ("state",),
}


class Metrics:
    """The contract's metrics (section 5) plus the per-kind gauges of later sections."""

    def __init__(self, registry: CollectorRegistry) -> None:
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
        self.maintenance_window_active = Gauge(
            "maintenance_window_active",
            "1 while the maintenance window is active.",
            ["name"],
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
        self.snapshot_newest_age_seconds = Gauge(
            "snapshot_newest_age_seconds",
            "Age of the newest available owned snapshot.",
            ["name"],
            namespace=PREFIX,
            registry=registry,
        )
        self.snapshots_owned = Gauge(
            "snapshots_owned",
            "Owned snapshots (any state) of the retention policy.",
            ["name"],
            namespace=PREFIX,
            registry=registry,
        )
        self.alarms_managed = Gauge(
            "alarms_managed",
            "Managed alarms by effective actions state (enabled|disabled).",
            ["state"],
            namespace=PREFIX,
            registry=registry,
        )
        self.gauges_by_name: dict[str, Gauge] = {
            "maintenance_window_active": self.maintenance_window_active,
            "snapshot_newest_age_seconds": self.snapshot_newest_age_seconds,
            "snapshots_owned": self.snapshots_owned,
            "alarms_managed": self.alarms_managed,
        }

    def set_revision(self, revision: str) -> None:
        self.desired_state_revision_info.clear()
        self.desired_state_revision_info.labels(revision=revision).set(1)

    def remove_measurement(self, metric: str, labels: dict[str, str]) -> None:
        """Drop one labelled series of a reconciler-observed gauge (its resource is gone)."""
        gauge = self.gauges_by_name.get(metric)
        if gauge is None or not labels:
            return
        with contextlib.suppress(KeyError):  # never set, or removed already
            gauge.remove(*(labels[name] for name in MEASUREMENT_LABELS[metric]))

    def set_measurement(self, metric: str, labels: dict[str, str], value: float) -> bool:
        """Set a reconciler-observed gauge by name; False when no such gauge exists."""
        gauge = self.gauges_by_name.get(metric)
        if gauge is None:
            return False
        (gauge.labels(**labels) if labels else gauge).set(value)
        return True
