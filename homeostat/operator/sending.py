"""Sending a pass's mutations of one kind through a bounded pool, stage after stage.

Round trips, not CPU, set the wall time of a large cleanup: 500 deletions one at a
time cost 500 round trips, eight at a time about 63. The rate stays bounded by the
shared API budget (`budget.py`), which every call of every worker consults. What
must happen in order is a stage boundary declared by the reconciler (`Staged`);
everything inside a stage is independent. Stage k of every resource runs before
stage k+1 of any, so no worker ever waits on a future of its own pool.
"""

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from homeostat.reconcilers.actions import Action, ApplyResult
from homeostat.reconcilers.aws import AwsClients, block_stop_signals
from homeostat.reconcilers.base import AnyReconciler, Staged, Stages

SHUTTING_DOWN = "not sent: shutting down"
# One resource's actions to send, with the reconciler that applies them and the clients (its
# region's) they are sent with.
Work = tuple[AnyReconciler, Sequence[Action], AwsClients]


def stages_of(reconciler: AnyReconciler, actions: Sequence[Action]) -> Stages:
    """The reconciler's stages, checked to hold every action exactly once; one unit (one
    apply call, as before concurrency) for a reconciler that declares none."""
    if not isinstance(reconciler, Staged):
        return [[list(actions)]]
    stages = reconciler.stages(actions)
    given = sorted(map(id, actions))
    split = sorted(id(a) for stage in stages for unit in stage for a in unit)
    if given != split:
        raise RuntimeError(f"stages hold {len(split)} actions for {len(actions)} given")
    return stages


def send_in_stages(
    work: Sequence[Work], concurrency: int, should_stop: Callable[[], bool]
) -> list[list[str | None]]:
    """Send every action once; per work item, the error of each action (None: applied), in
    the given order. At most `concurrency` apply calls are in flight at any moment."""
    errors: list[dict[int, str | None]] = [{} for _ in work]
    staged: list[Stages] = []
    for index, (reconciler, actions, _) in enumerate(work):
        try:
            staged.append(stages_of(reconciler, actions))
        except Exception as exc:  # noqa: BLE001 - a bug in one kind's split fails that resource only
            errors[index].update(
                dict.fromkeys(map(id, actions), f"apply failed: {type(exc).__name__}: {exc}")
            )
            staged.append([])
    depth = max((len(s) for s in staged), default=0)
    units = [
        [
            (index, unit)
            for index, stages in enumerate(staged)
            if level < len(stages)
            for unit in stages[level]
        ]
        for level in range(depth)
    ]
    widest = max((len(level) for level in units), default=1)
    with ThreadPoolExecutor(
        max_workers=max(1, min(concurrency, widest)),
        thread_name_prefix="homeostat-send",
        initializer=block_stop_signals,
    ) as pool:
        for level in units:  # a stage starts once the previous one has answered
            futures = [
                (index, unit, pool.submit(_send_unit, work[index][0], unit, work[index][2], should_stop))
                for index, unit in level
            ]
            for index, unit, future in futures:
                for action, result in zip(unit, future.result(), strict=True):
                    errors[index][id(action)] = result.error
    return [[errors[index][id(a)] for a in actions] for index, (_, actions, _) in enumerate(work)]


def _send_unit(
    reconciler: AnyReconciler, unit: list[Action], aws: AwsClients, should_stop: Callable[[], bool]
) -> list[ApplyResult]:
    """One apply call; its failure (or a shutdown before it started) is its actions' error."""
    if should_stop():
        return [ApplyResult(a, SHUTTING_DOWN) for a in unit]
    try:
        results = reconciler.apply(unit, aws)
        if len(results) != len(unit):
            raise RuntimeError(f"apply returned {len(results)} results for {len(unit)} actions")
    except Exception as exc:  # noqa: BLE001 - one unit's failure is its actions' error
        return [ApplyResult(a, f"apply failed: {type(exc).__name__}: {exc}") for a in unit]
    return results
