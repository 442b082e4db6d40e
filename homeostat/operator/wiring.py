"""The runtime: everything a command needs, built once from Settings and shared.

`run`, `run --once`, `plan` and `demo` all get their parts here, so they
cannot drift apart: the history store, the single-writer lease, one AWS
session with the call counter and the stop hook, the metrics and their
Reporter, the executor, the reconcilers, the last-known-good store, the
logger and the clock. `plan` asks for a read-only runtime: no history store
and no lease, so it never creates a database or a file.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR, CollectorRegistry

from homeostat.metrics import Metrics
from homeostat.operator.aws_session import BotoClients, Endpoint
from homeostat.operator.budget import ApiBudget
from homeostat.operator.clock import utc_now
from homeostat.operator.execution import Executor
from homeostat.operator.fights import FightRule, FightWatch
from homeostat.operator.history import HistoryError, HistoryStore
from homeostat.operator.last_good import LastKnownGood
from homeostat.operator.lease import Lease
from homeostat.operator.logs import get_logger
from homeostat.operator.options import Settings
from homeostat.operator.reporter import Reporter
from homeostat.operator.requests import PassRequests
from homeostat.reconcilers.base import AnyReconciler
from homeostat.reconcilers.registry import default_reconcilers, gauges

Clock = Callable[[], datetime]


class StartupError(Exception):
    """The process cannot start; one line for the operator."""


@dataclass(slots=True)
class Runtime:
    settings: Settings
    clock: Clock
    log: Any
    registry: CollectorRegistry
    reporter: Reporter
    requests: PassRequests
    aws: BotoClients
    reconcilers: Sequence[AnyReconciler]
    executor: Executor
    history: HistoryStore | None
    lease: Lease | None
    last_good: LastKnownGood | None
    fights: FightWatch | None = None  # the history remembers fights; `plan` has none

    def close(self) -> None:
        if self.history is not None:
            self.history.close()


def process_registry() -> CollectorRegistry:
    """A registry of this runtime's own, with the process, platform and GC collectors the
    global one would have: two runtimes in one process (tests, `demo`) never collide."""
    registry = CollectorRegistry()
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    return registry


def build_runtime(
    settings: Settings,
    *,
    read_only: bool = False,
    registry: CollectorRegistry | None = None,
    reconcilers: Sequence[AnyReconciler] | None = None,
    clock: Clock = utc_now,
    endpoint: Endpoint | None = None,
) -> Runtime:
    """Wire the process. Raises StartupError with a one-line reason.

    `endpoint` points the session at an explicit AWS (the demo's local one)
    with explicit credentials, instead of the boto3 chain and the environment.
    """
    registry = registry if registry is not None else process_registry()
    reporter = Reporter(Metrics(registry, gauges()), per_resource=not settings.once)
    requests = PassRequests()
    log = get_logger()
    aws = BotoClients(
        settings.region,
        on_call=reporter.aws_call,
        stopping=lambda: requests.stopping,
        endpoint=endpoint,
        budget=ApiBudget(settings.api_rate, on_wait=reporter.metrics.count_budget_wait),
    )
    if aws.region is None:
        raise StartupError("no AWS region: pass --region or set AWS_DEFAULT_REGION")
    history: HistoryStore | None = None
    if not read_only:
        try:
            history = HistoryStore(settings.history, shard=settings.selector.text)
        except HistoryError as exc:
            raise StartupError(str(exc)) from exc
    return Runtime(
        settings=settings,
        clock=clock,
        log=log,
        registry=registry,
        reporter=reporter,
        requests=requests,
        aws=aws,
        reconcilers=tuple(reconcilers) if reconcilers is not None else default_reconcilers(recall=history),
        executor=Executor(history, reporter.metrics, log, clock, settings.concurrency),
        history=history,
        lease=Lease(history.engine, settings.selector) if history is not None else None,
        last_good=LastKnownGood(history.engine, log, settings.selector.text) if history is not None else None,
        fights=(
            FightWatch(history, FightRule(settings.fight_threshold, settings.fight_window))
            if history is not None
            else None
        ),
    )
