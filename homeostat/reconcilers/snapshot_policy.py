"""The decisions of SnapshotRetention, as pure functions: which snapshots to delete, which slot to take.

Called by `snapshot_retention.diff` (and by the tests directly). Nothing here
does I/O or reads the clock: every function takes the observed snapshots and
`now`. Dates are compared as timezone-aware datetimes, never as strings.

Identifiers are compared case-insensitively: RDS stores snapshot and cluster
identifiers in lower case while manifests may spell prefixes and protect
globs in any case, and a case mismatch must never turn a protected snapshot
into a deletable one.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from fnmatch import fnmatchcase

from homeostat.desired_state.cron import next_fire, previous_fire
from homeostat.desired_state.identifiers import DBClusterId, SnapshotId
from homeostat.desired_state.instants import rfc3339

AWS_BACKUP_PREFIX = "awsbackup:"
SLOT_FORMAT = "%Y%m%d-%H%M"


class SnapshotType(StrEnum):
    """`SnapshotType` values of DescribeDBClusterSnapshots that matter here."""

    MANUAL = "manual"
    AUTOMATED = "automated"


class SnapshotStatus(StrEnum):
    """The only snapshot `Status` retention may delete; every other state is left alone."""

    AVAILABLE = "available"


class SlotState(StrEnum):
    """What the latest schedule slot at `now` calls for."""

    NO_SCHEDULE = "no_schedule"
    TAKEN = "taken"  # a snapshot of that name exists, in any state
    DUE = "due"  # missed by less than the starting deadline: take it now
    MISSED = "missed"  # missed by more: report, do not take
    EXPIRED = "expired"  # older than maxAge: a snapshot of it would already be due for deletion


@dataclass(frozen=True, slots=True)
class ObservedSnapshot:
    """One DB cluster snapshot as DescribeDBClusterSnapshots returned it (created: aware UTC)."""

    identifier: SnapshotId
    cluster: DBClusterId
    snapshot_type: str
    status: str
    created: datetime | None


@dataclass(frozen=True, slots=True)
class RetentionRules:
    """The retention part of a SnapshotRetention spec, with its cluster and prefix."""

    cluster: DBClusterId
    prefix: str
    max_age: timedelta
    min_keep: int
    max_deletions: int
    protect: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Deletion:
    snapshot: ObservedSnapshot
    reason: str


@dataclass(frozen=True, slots=True)
class RetentionDecision:
    """What to delete this pass, and what was held back (for plan notes)."""

    deletions: tuple[Deletion, ...]
    kept_for_min_keep: int  # expired, deletable, but among the minKeep newest available
    deferred: int  # expired and deletable, beyond maxDeletionsPerRun: later passes


@dataclass(frozen=True, slots=True)
class SlotDecision:
    state: SlotState
    slot: datetime | None = None
    snapshot_id: SnapshotId | None = None
    lateness: timedelta = timedelta(0)
    next_slot: datetime | None = None


def is_owned(snapshot: ObservedSnapshot, cluster: str, prefix: str) -> bool:
    """Owned = a manual snapshot of this cluster whose identifier starts with the prefix."""
    identifier = snapshot.identifier.lower()
    return (
        snapshot.snapshot_type == SnapshotType.MANUAL
        and snapshot.cluster.lower() == cluster.lower()
        and not identifier.startswith(AWS_BACKUP_PREFIX)
        and identifier.startswith(prefix.lower())
    )


def is_protected(identifier: str, patterns: Iterable[str]) -> bool:
    """True when a protect glob matches the identifier (case-insensitively)."""
    name = identifier.lower()
    return any(fnmatchcase(name, pattern.lower()) for pattern in patterns)


def owned_snapshots(snapshots: Iterable[ObservedSnapshot], rules: RetentionRules) -> list[ObservedSnapshot]:
    return [s for s in snapshots if is_owned(s, rules.cluster, rules.prefix)]


def _newest_first_key(snapshot: ObservedSnapshot) -> tuple[datetime, str]:
    assert snapshot.created is not None
    return (snapshot.created, snapshot.identifier)


def select_deletions(
    snapshots: Sequence[ObservedSnapshot], rules: RetentionRules, now: datetime
) -> RetentionDecision:
    """Pure: the owned, available, unprotected snapshots older than maxAge to delete now.

    Oldest first; the minKeep newest available owned snapshots (protected ones
    included) are never deleted, so at least minKeep available owned
    snapshots remain; at most maxDeletionsPerRun.
    """
    available = [
        s
        for s in owned_snapshots(snapshots, rules)
        if s.status == SnapshotStatus.AVAILABLE and s.created is not None
    ]
    newest_first = sorted(available, key=_newest_first_key, reverse=True)
    kept = {s.identifier for s in newest_first[: rules.min_keep]}
    expired = [
        s
        for s in reversed(newest_first)  # oldest first
        if s.created is not None
        and now - s.created > rules.max_age
        and not is_protected(s.identifier, rules.protect)
    ]
    eligible = [s for s in expired if s.identifier not in kept]
    chosen = eligible[: rules.max_deletions]
    max_age = human_duration(rules.max_age)
    deletions = tuple(
        Deletion(s, f"expired: created {rfc3339(s.created, 'minutes')}, older than maxAge {max_age}")
        for s in chosen
        if s.created is not None
    )
    return RetentionDecision(
        deletions=deletions,
        kept_for_min_keep=len(expired) - len(eligible),
        deferred=len(eligible) - len(chosen),
    )


def slot_snapshot_id(prefix: str, slot: datetime) -> SnapshotId:
    """The identifier of a slot's snapshot: prefix + slot time in UTC as %Y%m%d-%H%M (lower case)."""
    return SnapshotId((prefix + slot.astimezone(UTC).strftime(SLOT_FORMAT)).lower())


def decide_slot(
    schedule: str | None,
    time_zone: str,
    starting_deadline: timedelta,
    max_age: timedelta,
    prefix: str,
    existing: Iterable[str],
    now: datetime,
) -> SlotDecision:
    """Pure: the state of the latest schedule slot at or before `now`.

    Only the latest slot is ever taken (like a Kubernetes CronJob): earlier
    slots missed during an outage are superseded by it. A slot is due while it
    is late by less than both startingDeadline and maxAge (a snapshot taken
    later than maxAge after its slot would be created already expired, and
    one that retention removed must not be taken again).
    """
    if schedule is None:
        return SlotDecision(SlotState.NO_SCHEDULE)
    slot = previous_fire(schedule, time_zone, now)
    upcoming = next_fire(schedule, time_zone, now)
    identifier = slot_snapshot_id(prefix, slot)
    lateness = now - slot
    names = {name.lower() for name in existing}
    if identifier in names:
        state = SlotState.TAKEN
    elif lateness >= max_age:
        state = SlotState.EXPIRED
    elif lateness < starting_deadline:
        state = SlotState.DUE
    else:
        state = SlotState.MISSED
    return SlotDecision(state, slot, identifier, lateness, upcoming)


def human_duration(value: timedelta, most_units: int | None = None) -> str:
    """A duration in days, hours, minutes, seconds: `7d`, `90m` -> `1h30m`, `0s`.

    Days are the largest unit (a manifest's `7d` reads back as `7d`, not `1w`);
    `most_units` keeps only that many of the largest units (for lateness).
    """
    seconds = max(0, int(value.total_seconds()))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts[:most_units]) or "0s"


def describe_lateness(lateness: timedelta) -> str:
    """Lateness for humans, to the two largest units: `45s`, `5m`, `2h5m`, `3d4h`."""
    return human_duration(lateness, 2)


def newest_available_age(
    snapshots: Iterable[ObservedSnapshot], rules: RetentionRules, now: datetime
) -> float | None:
    """Seconds since the newest available owned snapshot was created; None when there is none."""
    times = [
        s.created
        for s in owned_snapshots(snapshots, rules)
        if s.status == SnapshotStatus.AVAILABLE and s.created is not None
    ]
    return (now - max(times)).total_seconds() if times else None
