"""One reconcile pass: observe each kind once, diff each resource, execute, classify.

Shared by `run --once`, `plan` (which executes nothing) and the daemon loop,
so all three see the same plans. What a pass produces (states, statuses, the
report) and the one classification of a resource's result are in statuses.py.
In a pass that executes (`run_pass`) every kind runs on its own worker thread
and reads the clock after its observation.
"""

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homeostat.desired_state.identifiers import Kind
from homeostat.desired_state.state import DesiredState, Resource, effective_region
from homeostat.operator.execution import Executor
from homeostat.operator.fights import FightWatch, Judgement
from homeostat.operator.records import Resumed
from homeostat.operator.statuses import PassReport, ResourceStatus, State, classify, suspended_status
from homeostat.operator.stragglers import GroupKey, Stragglers
from homeostat.reconcilers.actions import ObserveError, Plan
from homeostat.reconcilers.aws import AwsClients, block_stop_signals, clients_in, default_region, fan_out
from homeostat.reconcilers.base import AnyReconciler, Routed, merge_plans
from homeostat.reconcilers.registry import dependencies

# Why a resource is not reconciled this pass, as the state and message of its status.
Skip = Callable[[Resource[Any]], tuple[State, str] | None]
Clock = Callable[[], datetime]


def _never_skip(_resource: Resource[Any]) -> tuple[State, str] | None:
    return None


def resumed(resource: Resource[Any]) -> tuple[Resumed, ...]:
    """The `resume` event of a resource reconciled although it has a bounded hold: it expired."""
    hold = resource.manifest.spec.hold
    return () if hold is None else (Resumed(str(resource.kind), resource.name, hold),)


def _partition(
    desired: DesiredState, kinds: Sequence[Kind], skip: Skip, now: datetime, default: str | None
) -> tuple[dict[Kind, list[Resource[Any]]], list[ResourceStatus]]:
    """The resources of these kinds to reconcile this pass, and statuses of the others (each
    with its region: `default` unless its spec names one)."""
    active: dict[Kind, list[Resource[Any]]] = {}
    skipped: list[ResourceStatus] = []
    for kind in kinds:
        for resource in desired.of_kind(kind):
            region = effective_region(resource, default)
            if resource.manifest.spec.held(now):
                skipped.append(suspended_status(resource, region))
            elif (skipped_as := skip(resource)) is not None:
                state, reason = skipped_as
                skipped.append(ResourceStatus(kind, resource.name, state, reason, None, region=region))
            else:
                active.setdefault(kind, []).append(resource)
    return active, skipped


def kinds_of(reconcilers: Sequence[AnyReconciler]) -> list[Kind]:
    """The kinds in pass order: as the reconcilers (in registry order) first name them."""
    return list(dict.fromkeys(kind for r in reconcilers for kind in r.kinds))


def groups(reconcilers: Sequence[AnyReconciler]) -> list[list[AnyReconciler]]:
    """Reconcilers that plan for a common kind, together (their plans of one resource merge);
    each group runs on its own worker. In registry order, a kind's own reconciler first."""
    found: list[list[AnyReconciler]] = []
    for reconciler in reconcilers:
        joined = [g for g in found if any(set(r.kinds) & set(reconciler.kinds) for r in g)]
        rest = [g for g in found if all(g is not j for j in joined)]
        found = [*rest, [*(r for g in joined for r in g), reconciler]]
    position = {id(r): i for i, r in enumerate(reconcilers)}
    found.sort(key=lambda g: min(position[id(r)] for r in g))
    return [sorted(g, key=lambda r: len(r.kinds)) for g in found]


def _plan_group(
    group: Sequence[AnyReconciler],
    active: Mapping[Kind, Sequence[Resource[Any]]],
    desired: DesiredState,
    aws: AwsClients,
    observe_at: datetime,
    clock: Clock,
) -> list[tuple[AnyReconciler, Resource[Any], Plan]]:
    """Observe with each reconciler of a group once per region, then diff each resource at the
    instant its region's observations returned: a time-bound decision (window edge, snapshot
    slot) is taken with the time it is applied at, not with the pass's start, however long the
    observation took. A resource two reconcilers plan for gets one merged plan, its own kind's
    part first. Each region is observed with its own clients and sees only its own part of the
    desired state; the regions of a group are observed concurrently (one worker per region),
    and a region that fails is the error of its own resources only."""
    default = default_region(aws)
    by_region: dict[str | None, dict[Kind, list[Resource[Any]]]] = {}
    for kind, members in active.items():
        for resource in members:
            by_region.setdefault(effective_region(resource, default), {}).setdefault(kind, []).append(
                resource
            )

    def plan_region(region: str | None) -> dict[tuple[Kind, str], list[tuple[AnyReconciler, Plan]]]:
        local = desired.in_region(region, default)
        return _plan_region(group, by_region[region], local, clients_in(aws, region), observe_at, clock)

    parts = {
        key: found
        for region_parts in fan_out(plan_region, by_region, workers=len(by_region))
        for key, found in region_parts.items()
    }
    planned = []
    for kind in kinds_of(group):
        for resource in active.get(kind, ()):
            reconciler, plan = _joined(parts[(kind, resource.name)])
            planned.append((reconciler, resource, plan))
    return planned


def _plan_region(
    group: Sequence[AnyReconciler],
    active: Mapping[Kind, Sequence[Resource[Any]]],
    desired: DesiredState,
    aws: AwsClients,
    observe_at: datetime,
    clock: Clock,
) -> dict[tuple[Kind, str], list[tuple[AnyReconciler, Plan]]]:
    """One region's part of `_plan_group`: every reconciler's plan of each of its resources."""
    observations = []
    for reconciler in group:
        mine = [r for kind in reconciler.kinds for r in active.get(kind, ())]
        if not mine:
            continue
        try:
            observed: Mapping[str, object] = reconciler.observe(mine, desired, aws, observe_at)
        except Exception as exc:  # noqa: BLE001 - a bug or AWS failure in one kind must not stop the others
            observed = {r.name: ObserveError(f"observe failed: {type(exc).__name__}: {exc}") for r in mine}
        observations.append((reconciler, mine, observed))
    now = clock()
    parts: dict[tuple[Kind, str], list[tuple[AnyReconciler, Plan]]] = {}
    for reconciler, mine, observed in observations:
        for resource in mine:
            live = observed.get(resource.name, ObserveError("not observed"))
            try:
                plan = reconciler.diff(resource, live, now)
            except Exception as exc:  # noqa: BLE001 - one resource's failure is that resource's error
                plan = Plan(resource.kind, resource.name, error=f"diff failed: {type(exc).__name__}: {exc}")
            parts.setdefault((resource.kind, resource.name), []).append((reconciler, plan))
    return parts


def _joined(parts: Sequence[tuple[AnyReconciler, Plan]]) -> tuple[AnyReconciler, Plan]:
    """One plan of a resource, and the reconciler that applies its actions: the one that planned
    them, or a `Routed` one when several did (each action sent by the one that planned it)."""
    acting = [(reconciler, plan) for reconciler, plan in parts if plan.actions]
    plan = merge_plans([plan for _, plan in parts])
    if len(acting) > 1:
        return Routed(acting), plan
    return (acting[0][0] if acting else parts[0][0]), plan


def observe_and_diff(
    desired: DesiredState,
    reconcilers: Sequence[AnyReconciler],
    aws: AwsClients,
    now: datetime,
    skip: Skip = _never_skip,
) -> tuple[list[tuple[AnyReconciler, Resource[Any], Plan]], list[ResourceStatus]]:
    """Plans for every active resource at `now`, and statuses of those not reconciled (`plan`)."""
    planned: list[tuple[AnyReconciler, Resource[Any], Plan]] = []
    skipped: list[ResourceStatus] = []
    for group in groups(reconcilers):
        active, not_active = _partition(desired, kinds_of(group), skip, now, default_region(aws))
        skipped.extend(not_active)
        planned.extend(_plan_group(group, active, desired, aws, now, lambda: now))
    return planned, skipped


@dataclass(frozen=True, slots=True)
class _KindPass:
    """What one kind's worker hands back: its statuses, in desired-state order, and its time."""

    statuses: tuple[ResourceStatus, ...]
    seconds: float | None


@dataclass(frozen=True, slots=True)
class _PassContext:
    desired: DesiredState
    aws: AwsClients
    executor: Executor
    started: datetime
    clock: Clock
    dry_run: bool
    skip: Skip
    should_stop: Callable[[], bool]
    fights: FightWatch | None = None


def _reconcile_group(
    group: Sequence[AnyReconciler], ctx: _PassContext, prerequisites: Sequence["Future[_KindPass]"] = ()
) -> _KindPass:
    """One group's observe -> diff -> execute, on its own worker thread, once the groups of the
    kinds it runs after have finished (their failure is theirs: this group runs anyway)."""
    wait(prerequisites)
    default = default_region(ctx.aws)
    active, statuses = _partition(ctx.desired, kinds_of(group), ctx.skip, ctx.started, default)
    if not active:
        return _KindPass(tuple(statuses), None)
    started = time.monotonic()
    revision = ctx.desired.revision
    # Observe at the pass's start; decide at the time the observations returned.
    planned = _plan_group(group, active, ctx.desired, ctx.aws, ctx.started, ctx.clock)
    # Each resource's region: its status says it, and its actions are sent with its clients.
    regions = [effective_region(resource, default) for _, resource, _ in planned]
    if ctx.should_stop():
        for (_, resource, _), region in zip(planned, regions, strict=True):
            statuses.append(
                ResourceStatus(
                    resource.kind, resource.name, State.NOT_REACHED, "shutting down", None, region=region
                )
            )
        return _KindPass(tuple(statuses), time.monotonic() - started)
    dry_runs = [ctx.dry_run or resource.manifest.spec.dryRun for _, resource, _ in planned]
    # A resource something else keeps changing back is Fighting: its actions are withheld.
    judged = ctx.fights.judge_all([(r, p.actions) for _, r, p in planned], ctx.clock()) if ctx.fights else {}
    verdicts = [judged.get((resource.kind, resource.name), Judgement()) for _, resource, _ in planned]
    # The end of a bounded hold (or of a fight) comes before what it lets happen: one `resume`
    # row per hold, restarts included (recorded once, like findings).
    resumes = [
        ctx.executor.record((*resumed(resource), *verdict.events), revision=revision)
        for (_, resource, _), verdict in zip(planned, verdicts, strict=True)
    ]
    # The kind's mutations of every resource at once: a bounded pool sends them (--concurrency).
    executed = ctx.executor.execute_all(
        [
            (reconciler, () if verdict.fight else plan.actions, dry, clients_in(ctx.aws, region))
            for (reconciler, _, plan), dry, verdict, region in zip(
                planned, dry_runs, verdicts, regions, strict=True
            )
        ],
        revision=revision,
        should_stop=ctx.should_stop,
    )
    for (_, resource, plan), resource_dry_run, applied, resumed_rows, verdict, region in zip(
        planned, dry_runs, executed, resumes, verdicts, regions, strict=True
    ):
        state, message = classify(plan, applied, dry_run=resource_dry_run)
        if verdict.fight is not None and ctx.fights is not None:
            state, message = State.FIGHTING, ctx.fights.rule.message(verdict.fight)
        # Findings are reported (once), never classified: they do not make a resource fail or drift.
        records = applied + ctx.executor.record(plan.findings, revision=revision)
        statuses.append(
            ResourceStatus(
                resource.kind,
                resource.name,
                state,
                message,
                ctx.clock(),
                plan,
                (*resumed_rows, *records),
                region=region,
            )
        )
    return _KindPass(tuple(statuses), time.monotonic() - started)


def _start_workers(
    parts: Sequence[Sequence[AnyReconciler]],
    ctx: _PassContext,
    waits_for: Mapping[Kind, Sequence[Kind]],
    stragglers: Stragglers | None,
) -> dict[GroupKey, "Future[_KindPass]"]:
    """One worker per group, so a group waiting for an earlier one never holds up a worker that
    the earlier group needs (a dependency is always an earlier kind, so the waits end). A group
    still running for an earlier pass is not started twice, but its dependants wait for it."""
    pool = ThreadPoolExecutor(
        max_workers=max(1, len(parts)), thread_name_prefix="homeostat-kind", initializer=block_stop_signals
    )
    futures: list[Future[_KindPass]] = []
    started: dict[GroupKey, Future[_KindPass]] = {}
    for group in parts:
        key = tuple(kinds_of(group))
        busy = stragglers.running(key) if stragglers is not None else None
        if busy is not None:
            futures.append(busy)
            continue
        needed = {k for kind in key for k in waits_for.get(kind, ())}
        prerequisites = [f for g, f in zip(parts, futures, strict=False) if needed & set(kinds_of(g))]
        future = pool.submit(_reconcile_group, group, ctx, prerequisites)
        futures.append(future)
        started[key] = future
    pool.shutdown(wait=False)  # the workers finish on their own threads; a straggler outlives the pass
    return started


# How often a pass that may end early (a timed pass is due) looks up from its workers.
UNTIL_POLL_SECONDS = 0.05


def run_pass(
    desired: DesiredState,
    reconcilers: Sequence[AnyReconciler],
    aws: AwsClients,
    executor: Executor,
    *,
    clock: Clock,
    dry_run: bool,
    skip: Skip = _never_skip,
    should_stop: Callable[[], bool] = lambda: False,
    after: Mapping[Kind, Sequence[Kind]] | None = None,
    until: Callable[[set[GroupKey]], bool] | None = None,
    stragglers: Stragglers | None = None,
    fights: FightWatch | None = None,
) -> PassReport:
    """Reconcile every resource once, each kind (or group of reconcilers sharing kinds, such as
    the alarm kinds) on its own worker: no kind waits on another kind's AWS retries.
    A group whose kinds run after other kinds (`after`, default: the registry's declared
    `KindDescriptor.after`) waits for those kinds' workers: ECSService after
    ECSTaskDefinition, so the pass that registers a revision also moves the service to it.
    Statuses are reported in registry order, whatever order the workers
    finish in. Stops between resources when asked to (SIGTERM). A failure to write the history
    is raised once every kind has finished (such a pass is not progress). Sets no metrics: the
    caller's Reporter owns every series, and removes them.

    The daemon passes `until` and `stragglers`: once `until(still_running)` is true (a timed
    pass is due), the pass stops waiting, and the workers still running go on as stragglers; a later pass
    does not start them again and reports them when they have finished (see stragglers.py).
    Without them (`run --once`, tests) the pass waits for every worker. With `fights`, a
    resource something else keeps changing back is Fighting (fights.py); without, never."""
    started = clock()
    ctx = _PassContext(desired, aws, executor, started, clock, dry_run, skip, should_stop, fights)
    parts = groups(reconcilers)
    results: dict[GroupKey, _KindPass] = {}
    if stragglers is not None:
        for key, late in stragglers.harvest():
            results[key] = late.result()  # re-raises a late worker's history failure
    started_here = _start_workers(parts, ctx, dependencies() if after is None else after, stragglers)
    pending: set[Future[_KindPass]] = set(started_here.values())
    while pending:
        _, pending = wait(pending, timeout=None if until is None else UNTIL_POLL_SECONDS)
        running = {key for key, future in started_here.items() if future in pending}
        if running and until is not None and stragglers is not None and until(running):
            break
    for key, future in started_here.items():
        if future.done():
            results[key] = future.result()  # re-raises a worker's history failure
        elif stragglers is not None:
            stragglers.keep(key, future)
    report = PassReport(revision=desired.revision, started=started)
    for group in parts:
        kind_pass = results.get(tuple(kinds_of(group)))
        if kind_pass is None:
            continue  # still running: reported by the pass that finds it finished
        report.statuses.extend(kind_pass.statuses)
        if kind_pass.seconds is not None:
            for kind in kinds_of(group):  # a group's kinds share one worker, and so its time
                report.seconds_by_kind[kind] = kind_pass.seconds
    return report
