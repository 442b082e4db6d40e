"""Pending Aurora maintenance: the runbook's "Aurora Maintenance" step, read and decided here.

The runbook runs `describe-pending-maintenance-actions`, then
`apply-pending-maintenance-action --opt-in-type immediate` "in the maintenance window".
A MaintenanceWindow that lists clusters (`applyPendingMaintenance`) does it for them;
its reconciler (`maintenance_window.py`) calls this module.

Read (`read_pending`): the listed clusters' ARNs from DescribeDBClusters (the shared
`rds_clusters.describe_clusters`), then ONE paged DescribePendingMaintenanceActions
(Filters db-cluster-id = those ARNs, MaxRecords 100, following Marker) per 100 clusters
for every window of the pass. Any failure, whatever its type (moto's server answers
these operations with HTTP 500, which botocore raises as ResponseParserError, no
ClientError), is a value (`PendingRead.error`), never an exception for the pass.

Decide (`plan_pending`, pure): while an occurrence of the window is active, one
`apply_pending_maintenance` per (cluster, action) pending and selected, unless the
history remembers it sent in this occurrence (`occurrence_key` is in the row's `after`)
or AWS already shows it opted in for immediate application. Notes say what is pending,
and warn when AWS would apply an action (AutoAppliedAfterDate, ForcedApplyDate) before
the window's next occurrence starts.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field

from homeostat.desired_state.identifiers import Kind
from homeostat.desired_state.instants import as_utc, rfc3339
from homeostat.desired_state.models import Strict
from homeostat.desired_state.windows import Timing, current_start, edges
from homeostat.reconcilers.actions import Action
from homeostat.reconcilers.aws import chunks, describe_error, pages
from homeostat.reconcilers.rds_clusters import CLUSTER_FILTER_BATCH, describe_clusters
from homeostat.reconcilers.rollouts import SENT, Recall

PENDING_PAGE_SIZE = 100  # DescribePendingMaintenanceActions accepts MaxRecords 20-100
OPT_IN_TYPE = "immediate"
# Outside an active occurrence the pending actions are read at most this often (contract section 6).
IDLE_READ_SECONDS = 3600.0


class PendingMaintenanceAction(StrEnum):
    APPLY_PENDING_MAINTENANCE = "apply_pending_maintenance"


PENDING_PERMISSIONS: Mapping[StrEnum, tuple[str, ...]] = {
    PendingMaintenanceAction.APPLY_PENDING_MAINTENANCE: ("rds:ApplyPendingMaintenanceAction",),
}
PENDING_OBSERVATIONS = ("rds:DescribeDBClusters", "rds:DescribePendingMaintenanceActions")


class PendingMaintenance(Strict):
    """One cluster whose pending maintenance the window applies, optionally only some actions."""

    dbClusterIdentifier: Annotated[
        str,
        Field(pattern=r"^[A-Za-z][A-Za-z0-9-]{0,62}$", description="Aurora DB cluster identifier."),
    ]
    actions: Annotated[
        tuple[Annotated[str, Field(min_length=1, max_length=255)], ...] | None,
        Field(
            min_length=1,
            description="Only these pending actions (e.g. system-update, db-upgrade); default every one.",
        ),
    ] = None

    def selects(self, action: str) -> bool:
        return self.actions is None or action in self.actions


@dataclass(frozen=True, slots=True)
class Pending:
    """One pending maintenance action of one cluster, as DescribePendingMaintenanceActions says."""

    action: str
    description: str = ""
    auto_applied_after: datetime | None = None
    forced_apply: datetime | None = None
    opt_in_status: str | None = None
    current_apply: datetime | None = None


@dataclass(frozen=True, slots=True)
class PendingRead:
    """One read of the pending actions of a set of clusters (keys: lower-cased identifiers,
    as RDS stores them). `arns` holds the clusters that exist; `error` is set when the read
    failed, and then nothing else is to be trusted."""

    read_at: datetime
    clusters: frozenset[str]
    arns: Mapping[str, str] = field(default_factory=dict)
    pending: Mapping[str, tuple[Pending, ...]] = field(default_factory=dict)
    error: str | None = None

    def covers(self, clusters: Iterable[str]) -> bool:
        return {c.lower() for c in clusters} <= self.clusters


def _instant(value: Any) -> datetime | None:
    return as_utc(value) if isinstance(value, datetime) else None


def pending_of(detail: Mapping[str, Any]) -> Pending:
    """A Pending from one PendingMaintenanceActionDetails entry of the AWS response."""
    return Pending(
        action=str(detail.get("Action", "")),
        description=str(detail.get("Description") or ""),
        auto_applied_after=_instant(detail.get("AutoAppliedAfterDate")),
        forced_apply=_instant(detail.get("ForcedApplyDate")),
        opt_in_status=str(detail["OptInStatus"]) if detail.get("OptInStatus") else None,
        current_apply=_instant(detail.get("CurrentApplyDate")),
    )


def read_pending(rds: Any, clusters: Sequence[str], now: datetime) -> PendingRead:
    """The pending actions of the named clusters, read at `now`. Never raises: any failure of
    either call (a ClientError, a BotoCoreError, moto's unparseable 500, a bug) is the read's error."""
    asked = frozenset(c.lower() for c in clusters)
    try:
        found = describe_clusters(rds, sorted(asked))
        arns = {name: str(item["DBClusterArn"]) for name, item in found.items() if item.get("DBClusterArn")}
        by_arn = {arn: name for name, arn in arns.items()}
        pending: dict[str, list[Pending]] = {name: [] for name in arns}
        for batch in chunks(sorted(by_arn), CLUSTER_FILTER_BATCH):
            filters = [{"Name": "db-cluster-id", "Values": batch}]
            for response in pages(
                rds.describe_pending_maintenance_actions,
                "Marker",
                Filters=filters,
                MaxRecords=PENDING_PAGE_SIZE,
            ):
                for resource in response.get("PendingMaintenanceActions", []):
                    name = by_arn.get(str(resource.get("ResourceIdentifier", "")))
                    if name is not None:
                        details = resource.get("PendingMaintenanceActionDetails", [])
                        pending[name].extend(pending_of(d) for d in details)
    except Exception as exc:  # noqa: BLE001 - whatever botocore raises is this read's error, not the pass's
        return PendingRead(now, asked, error=f"cannot read pending maintenance: {describe_error(exc)}")
    return PendingRead(now, asked, arns, {name: tuple(found) for name, found in pending.items()})


def occurrence_key(window: str, timing: Timing, now: datetime) -> str | None:
    """`<window>@<start of the occurrence active at now>`, or None while none is active. Pure.

    The same for every instant of one occurrence, different for two: what a history row of
    an application carries, so a restart inside the occurrence knows what was sent in it."""
    start = current_start(timing, now)
    return None if start is None else f"{window}@{rfc3339(start, 'seconds')}"


def remembered_sent(recall: Recall | None, kind: Kind, window: str) -> frozenset[tuple[str, str, str]] | None:
    """(occurrence, cluster, action) of every application the history holds for the window
    (None without a history: `plan`)."""
    if recall is None:
        return None
    rows = recall.remembered(
        str(kind), [window], PendingMaintenanceAction.APPLY_PENDING_MAINTENANCE, SENT
    ).get(window, [])
    return frozenset(
        (
            str(row.after.get("occurrence")),
            str(row.after.get("cluster")).lower(),
            str(row.after.get("action")),
        )
        for row in rows
    )


@dataclass(frozen=True, slots=True)
class PendingPlan:
    """The pending-maintenance part of a window's plan."""

    actions: tuple[Action, ...] = ()
    notes: tuple[str, ...] = ()
    error: str | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)


def _when(instant: datetime) -> str:
    return rfc3339(instant, "seconds")


def describe_pending(pending: Pending) -> str:
    """`system-update (auto-applied after D, forced on D, opted in: immediate)`."""
    dates = [
        f"auto-applied after {_when(pending.auto_applied_after)}" if pending.auto_applied_after else "",
        f"forced on {_when(pending.forced_apply)}" if pending.forced_apply else "",
        f"opted in: {pending.opt_in_status}" if pending.opt_in_status else "",
    ]
    shown = ", ".join(d for d in dates if d)
    return f"{pending.action} ({shown})" if shown else pending.action


def early_dates(pending: Pending, next_start: datetime | None) -> list[str]:
    """The dates at which AWS would apply the action before the window's next occurrence
    starts (every date when the window has no next occurrence). Pure."""
    dated = [("AutoAppliedAfterDate", pending.auto_applied_after), ("ForcedApplyDate", pending.forced_apply)]
    return [
        f"{name} {_when(instant)}"
        for name, instant in dated
        if instant is not None and (next_start is None or instant < next_start)
    ]


def applied_too_early(
    cluster: str, pending: Sequence[Pending], selected: PendingMaintenance, next_start: datetime | None
) -> list[str]:
    """Warnings for the selected actions AWS would apply outside the window. Pure."""
    before = (
        f"before the window's next start {_when(next_start)}"
        if next_start
        else "and the window has no next occurrence"
    )
    return [
        f"warning: {cluster} {p.action}: {' and '.join(dates)} {before}; "
        "AWS would apply it outside the window"
        for p in pending
        if selected.selects(p.action) and (dates := early_dates(p, next_start))
    ]


def plan_pending(
    kind: Kind,
    window: str,
    timing: Timing,
    listed: Sequence[PendingMaintenance],
    read: PendingRead | None,
    sent: frozenset[tuple[str, str, str]] | None,
    now: datetime,
) -> PendingPlan:
    """Pure: the applications due at `now`, the notes and the facts of a window's pending maintenance.

    While an occurrence is active a failed read, or a listed cluster that does not exist, is
    the window's error (the runbook step cannot be done); outside one they are notes (nothing
    is to be done until the window starts). A read taken before the occurrence started is
    not acted on: the next pass reads again. `sent` None (no history: `plan`) applies
    whatever AWS still shows pending and not opted in."""
    if not listed:
        return PendingPlan()
    key = occurrence_key(window, timing, now)
    started = current_start(timing, now)
    if read is None or read.error is not None or not read.covers(p.dbClusterIdentifier for p in listed):
        problem = read.error if read is not None and read.error else "pending maintenance not read yet"
        return PendingPlan(error=problem) if key is not None else PendingPlan(notes=(problem,))
    fresh = started is not None and read.read_at >= started
    next_start = edges(timing, now).next_start
    actions: list[Action] = []
    notes: list[str] = []
    shown: list[str] = []
    warnings: list[str] = []
    missing: list[str] = []
    for item in listed:
        cluster = item.dbClusterIdentifier
        arn = read.arns.get(cluster.lower())
        if arn is None:
            missing.append(cluster)
            continue
        pending = read.pending.get(cluster.lower(), ())
        described = [describe_pending(p) for p in pending]
        shown.extend(f"{cluster}: {d}" for d in described)
        notes.append(
            f"pending maintenance on {cluster}: {', '.join(described)}"
            if pending
            else f"no pending maintenance on {cluster}"
        )
        if key is None:
            warnings.extend(applied_too_early(cluster, pending, item, next_start))
            continue
        for p in pending:
            if not item.selects(p.action):
                notes.append(f"{cluster} {p.action}: not in this window's actions; left to AWS")
            elif p.opt_in_status == OPT_IN_TYPE:
                notes.append(f"{cluster} {p.action}: already opted in for immediate application")
            elif sent is not None and (key, cluster.lower(), p.action) in sent:
                notes.append(f"{cluster} {p.action}: applied in this occurrence ({key})")
            elif not fresh:
                notes.append(f"{cluster} {p.action}: read before {key} began; applied at the next pass")
            else:
                actions.append(_application(kind, window, cluster, arn, p, key, unknown=sent is None))
    error = f"DB cluster(s) not found: {', '.join(missing)}" if missing else None
    if missing and key is None:
        notes.append(f"{error}; nothing can be applied to them")
        error = None
    return PendingPlan(
        actions=tuple(actions),
        notes=(*notes, *warnings),
        error=error,
        facts={"pendingMaintenance": shown, "maintenanceWarnings": warnings},
    )


def _application(
    kind: Kind, window: str, cluster: str, arn: str, pending: Pending, key: str, *, unknown: bool
) -> Action:
    """One ApplyPendingMaintenanceAction; its `after` names the occurrence (the history is the memory)."""
    why = "would apply unless the history holds it applied in" if unknown else "pending, applied once in"
    return Action(
        kind=kind,
        name=window,
        action=PendingMaintenanceAction.APPLY_PENDING_MAINTENANCE,
        target=cluster,
        before={"action": pending.action, "optInStatus": pending.opt_in_status},
        after={"action": pending.action, "optInType": OPT_IN_TYPE, "cluster": cluster, "occurrence": key},
        reason=f"maintenance window: {pending.action} {why} occurrence {key}",
        params={"ResourceIdentifier": arn, "ApplyAction": pending.action, "OptInType": OPT_IN_TYPE},
    )


def apply_pending(rds: Any, action: Action) -> str | None:
    """Send one application; its error (None: applied). Any exception is this action's error."""
    try:
        rds.apply_pending_maintenance_action(**action.params)
    except Exception as exc:  # noqa: BLE001 - whatever botocore raises fails this action only
        return describe_error(exc)
    return None
