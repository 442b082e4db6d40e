"""The Reporter: the one writer of the process's metric series, and the one that removes them.

Every series a resource's pass sets (its `resource_in_sync`, and each
gauge its plan measured) is remembered under that resource, so when the
resource leaves the desired state, or is suspended, exactly those series go
with it. A series several resources report (a global gauge) goes only when
the last of them is gone. Nothing else in the operator sets a per-resource
series: `run_pass` returns values and the reporter turns them into gauges.

`run --once` serves no `/metrics`, so its reporter sets no per-resource series
(`per_resource=False`): four series per resource nobody can scrape were 80 ms
of a 1,000-service `run --once`. Its counters are still kept (they are cheap,
and a test or an embedding process may read the registry).
"""

from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from homeostat import __version__
from homeostat.desired_state.identifiers import Kind
from homeostat.metrics import GaugeDeclaration, Metrics
from homeostat.operator.records import FightAction
from homeostat.operator.statuses import PassReport, ResourceStatus, State

ResourceKey = tuple[Kind, str]
# (measurement metric, sorted label items) of one gauge series a plan set.
Series = tuple[GaugeDeclaration, tuple[tuple[str, str], ...]]
# States whose pass did not look at the resource: the previous in-sync value stays.
NOT_LOOKED_AT = frozenset({State.BACKING_OFF, State.NOT_REACHED})


class Reporter:
    def __init__(self, metrics: Metrics, *, per_resource: bool = True) -> None:
        self.metrics = metrics
        self.per_resource = per_resource
        self._measured: dict[ResourceKey, set[Series]] = {}
        self._in_sync: set[ResourceKey] = set()
        self._suspended: set[ResourceKey] = set()  # resources with a resource_suspended series
        self._expiring: set[ResourceKey] = set()  # resources with a suspension_expiry series
        self._fighting: set[ResourceKey] = set()  # resources with a resource_fighting series

    # -- the process --------------------------------------------------------------------------

    def started(self, resync_seconds: int) -> None:
        self.metrics.build_info.labels(version=__version__).set(1)
        self.metrics.resync_seconds.set(resync_seconds)

    def leading(self, leader: bool) -> None:
        self.metrics.leader.set(1 if leader else 0)

    def aws_call(self, service: str, operation: str, result: str) -> None:
        """The botocore `after-call` observer of the shared session (see aws_session)."""
        self.metrics.aws_api_calls_total.labels(service=service, operation=operation, result=result).inc()

    def desired_state_loaded(self, revision: str | None) -> None:
        """A load of the directory: a valid revision, or None when it was rejected."""
        valid = revision is not None
        self.metrics.desired_state_loads_total.labels(result="valid" if valid else "invalid").inc()
        self.metrics.desired_state_valid.set(1 if valid else 0)

    def revision_in_force(self, revision: str) -> None:
        self.metrics.set_revision(revision)

    def pass_completed(self, when: datetime) -> None:
        """Only a pass that completed is progress (a failed one leaves the timestamp alone)."""
        self.metrics.last_pass_timestamp_seconds.set(when.timestamp())

    # -- resources ----------------------------------------------------------------------------

    def pass_reported(self, report: PassReport) -> None:
        """Set the series of one pass: reconcile counts, durations, in-sync and measured gauges."""
        counted = Counter((str(status.kind), str(status.result)) for status in report.statuses)
        for (kind, result), reconciles in counted.items():
            self.metrics.reconcile_total.labels(kind=kind, result=result).inc(reconciles)
        fights = Counter(
            str(status.kind)
            for status in report.statuses
            for record in status.records
            if record.action == FightAction.DETECTED
        )
        for kind, detected in fights.items():
            self.metrics.fights_total.labels(kind=kind).inc(detected)
        if self.per_resource:
            for status in report.statuses:
                self._resource(status)
        for kind, seconds in report.seconds_by_kind.items():
            self.metrics.reconcile_duration_seconds.labels(kind=str(kind)).observe(seconds)

    def _resource(self, status: ResourceStatus) -> None:
        key = (status.kind, status.name)
        self._suspension(key, status)
        if status.state in NOT_LOOKED_AT:
            return
        self._fight(key, status)
        self.metrics.resource_in_sync.labels(kind=str(status.kind), name=status.name).set(
            1 if status.in_sync else 0
        )
        self._in_sync.add(key)
        if status.state == State.SUSPENDED:
            self._forget_measured(key)  # not reconciled: its last values would go stale
            return
        if status.plan is None:
            return
        for measurement in status.plan.measurements:
            labels = dict(measurement.labels)
            self.metrics.set_measurement(measurement.metric, labels, measurement.value)
            self._measured.setdefault(key, set()).add((measurement.metric, tuple(sorted(labels.items()))))

    def _suspension(self, key: ResourceKey, status: ResourceStatus) -> None:
        """resource_suspended for every resource (a backing-off one is not held); the expiry of
        a bounded hold only while it holds, so an alert can tell a plain `true` from it."""
        labels = {"kind": str(status.kind), "name": status.name}
        held = status.state == State.SUSPENDED
        self.metrics.resource_suspended.labels(**labels).set(1 if held else 0)
        self._suspended.add(key)
        if held and status.suspension is not None:
            self.metrics.suspension_expiry_timestamp_seconds.labels(**labels).set(
                status.suspension.until.timestamp()
            )
            self._expiring.add(key)
        elif key in self._expiring:
            self.metrics.suspension_expiry_timestamp_seconds.remove(str(status.kind), status.name)
            self._expiring.discard(key)

    def _fight(self, key: ResourceKey, status: ResourceStatus) -> None:
        """resource_fighting for every resource a pass looked at (fights_total is counted per
        detection in `pass_reported`)."""
        self.metrics.resource_fighting.labels(kind=str(status.kind), name=status.name).set(
            1 if status.state == State.FIGHTING else 0
        )
        self._fighting.add(key)

    def keep_only(self, keys: Iterable[ResourceKey]) -> None:
        """Remove every series of the resources not in `keys` (their manifests were removed)."""
        kept = set(keys)
        for key in set(self._measured) - kept:
            self._forget_measured(key)
        for gauge, reported in (  # the per-resource gauges and the resources each has a series of
            (self.metrics.resource_in_sync, self._in_sync),
            (self.metrics.resource_suspended, self._suspended),
            (self.metrics.suspension_expiry_timestamp_seconds, self._expiring),
            (self.metrics.resource_fighting, self._fighting),
        ):
            for kind, name in reported - kept:
                gauge.remove(str(kind), name)
            reported.intersection_update(kept)

    def _forget_measured(self, key: ResourceKey) -> None:
        series = self._measured.pop(key, set())
        still_reported = set().union(*self._measured.values()) if self._measured else set()
        for metric, labels in series - still_reported:
            self.metrics.remove_measurement(metric, dict(labels))
