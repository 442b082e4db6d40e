"""Watched ECS rollouts: what became of the deployment carrying the task definition homeostat sent.

After homeostat changes a service's task definition, the deployment carrying it is followed
through its `rolloutState` (contract section 2, "Deployments are watched"). The verdict is a
pure function of the service's deployments (DescribeServices already returns them) and of
what the history database remembers: the UpdateService rows homeostat applied and the
`deployment_failed` rows it recorded. The memory is what keeps a failed revision from being
sent again after the deployment has left DescribeServices' answer, or after a restart; it
is keyed by the task definition and the digest of the manifests (the service's and its
ECSTaskDefinition's), so a changed manifest may send that revision again, an unchanged one
never does. `plan` has no history store (read-only): it shows what DescribeServices shows.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from homeostat.reconcilers.actions import GaugeSpec, Measurement, Outcome, Rollout, RolloutState

DEPLOYMENT_STATE = GaugeSpec(
    "deployment_state",
    "1 for the state of the watched deployment of an ECSService (deploying, completed, failed), else 0.",
    ("name", "state"),
)
# A pass this often while a deployment settles: a timed wake-up, not the resync.
SETTLE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Remembered:
    """One completed history row, as a reconciler reads it back: when, what it set, its error."""

    time: datetime
    after: Mapping[str, Any]
    error: str | None


# The history rows that count as sent when a reconciler recalls what it did: `interrupted` too,
# since AWS may have seen the call the process died in (a restart must never send it twice).
SENT = (Outcome.APPLIED, Outcome.INTERRUPTED)


class Recall(Protocol):
    """The history database, read-only, as reconcilers see it (the operator's HistoryStore)."""

    def remembered(
        self, kind: str, names: Sequence[str], action: str, outcomes: Sequence[str]
    ) -> Mapping[str, list[Remembered]]:
        """Per resource of `names` (absent: none), its rows of an action with any of these
        outcomes, newest first (a bounded number); one batch for a whole group of resources."""
        ...


@dataclass(frozen=True, slots=True)
class Deployment:
    """One entry of DescribeServices' `deployments`."""

    task_definition: str
    status: str
    rollout_state: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class RolloutMemory:
    """What the history says of one service: the task definitions homeostat sent (applied
    UpdateService rows) and the deployments it recorded as failed, each newest first."""

    sent: tuple[Remembered, ...] = ()
    failed: tuple[Remembered, ...] = ()


@dataclass(frozen=True, slots=True)
class Verdict:
    """The watched deployment: its rollout, and for a failure seen for the first time, the
    task definition and reason to record (once)."""

    rollout: Rollout
    new_failure: tuple[str, str] | None = None

    @property
    def holds_back(self) -> bool:
        """Nothing of the task definition is sent: the deployment settles, or it failed."""
        return self.rollout.state != RolloutState.COMPLETED


def deployments_of(item: Mapping[str, Any]) -> tuple[Deployment, ...]:
    """The deployments of one DescribeServices entry."""
    return tuple(
        Deployment(
            task_definition=str(d.get("taskDefinition", "")),
            status=str(d.get("status", "")),
            rollout_state=str(d["rolloutState"]) if d.get("rolloutState") else None,
            reason=str(d.get("rolloutStateReason") or ""),
        )
        for d in item.get("deployments") or ()
    )


def verdict(
    matches: Callable[[str], bool],
    manifests: str,
    deployments: Sequence[Deployment],
    memory: RolloutMemory | None,
    current: str | None = None,
) -> Verdict | None:
    """Pure: the watched deployment of the wanted task definition (`matches`), or None when
    there is none to watch (the service is moved to it as ordinary drift).

    A failure recorded for this task definition under these manifests holds it back until
    homeostat sends another one (the manifests changed, and may change back); a deployment
    carrying it is IN_PROGRESS (deploying), FAILED (failed) or done; a deployment gone because
    the circuit breaker rolled back to another revision is a failure when homeostat sent the
    wanted one after the last failure it recorded of it (so a rollback seen again after the
    manifests changed is not taken for the new send's failure).

    `current` is the service's own task definition (the latest UpdateService). When it is not
    the wanted one, someone deployed another revision since: a deployment still listed with the
    wanted one (being replaced, or a record moto never updates) is not watched, and the service
    is moved back as ordinary drift instead of waiting for ever."""
    failed = [r for r in (memory.failed if memory else ()) if matches(str(r.after.get("taskDefinition")))]
    for row in failed:
        if row.after.get("manifests") == manifests and not _moved_on(matches, row, memory):
            return Verdict(Rollout(RolloutState.FAILED, _held_back(row.error or "deployment failed")))
    carrying = next((d for d in deployments if matches(d.task_definition)), None)
    if carrying is not None:
        if carrying.rollout_state == "FAILED":
            reason = carrying.reason or "deployment FAILED"
            return Verdict(
                Rollout(RolloutState.FAILED, _held_back(reason)), (carrying.task_definition, reason)
            )
        if current is not None and not matches(current):
            return None
        if carrying.rollout_state == "IN_PROGRESS":
            return Verdict(
                Rollout(RolloutState.DEPLOYING, f"deploying {carrying.task_definition}: rollout IN_PROGRESS")
            )
        return Verdict(Rollout(RolloutState.COMPLETED, f"deployment of {carrying.task_definition} completed"))
    primary = next((d for d in deployments if d.status == "PRIMARY"), None)
    sent = next(
        (r for r in (memory.sent if memory else ()) if matches(str(r.after.get("taskDefinition")))), None
    )
    if (
        sent is not None
        and primary is not None
        and "circuit breaker" in primary.reason.lower()
        and (not failed or sent.time > failed[0].time)
    ):
        wanted = str(sent.after.get("taskDefinition"))
        return Verdict(Rollout(RolloutState.FAILED, _held_back(primary.reason)), (wanted, primary.reason))
    return None


def _moved_on(matches: Callable[[str], bool], failure: Remembered, memory: RolloutMemory | None) -> bool:
    """Whether homeostat sent another task definition after this failure: the manifests changed
    in between, so the same manifests again (a revert of the fix) are a new deployment."""
    return any(
        "taskDefinition" in row.after
        and not matches(str(row.after["taskDefinition"]))
        and row.time > failure.time
        for row in (memory.sent if memory else ())
    )


def _held_back(reason: str) -> str:
    return (
        f"deployment failed: {reason}; that revision is not sent again until the manifest of the "
        "service or of its task definition changes"
    )


def deployment_gauge(name: str, found: Verdict | None, in_place: bool) -> tuple[Measurement, ...]:
    """deployment_state{name,state}: one 1 and two 0s; `completed` also when no deployment is
    watched and the service runs the wanted task definition; all 0 while it is still to be sent."""
    state = found.rollout.state if found is not None else (RolloutState.COMPLETED if in_place else None)
    return tuple(
        Measurement(DEPLOYMENT_STATE, {"name": name, "state": str(s)}, 1 if s == state else 0)
        for s in RolloutState
    )
