"""Specification of SnapshotRetention's pure decisions: retention selection and schedule slots.

Retention is checked by properties over random snapshot sets and policies
(hypothesis), modelling AWS by removing what each pass deletes. Slots are
checked with an injected clock: `now` is a parameter of every function, so
no test patches the system time.
"""

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from homeostat.desired_state.identifiers import DBClusterId, SnapshotId
from homeostat.reconcilers.actions import Measurement
from homeostat.reconcilers.rds_snapshots import ClusterSnapshots
from homeostat.reconcilers.snapshot_policy import (
    ObservedSnapshot,
    RetentionRules,
    SlotState,
    decide_slot,
    describe_lateness,
    is_owned,
    is_protected,
    select_deletions,
    slot_snapshot_id,
)
from homeostat.reconcilers.snapshot_retention import NEWEST_AGE, OWNED, SnapshotAction, plan_snapshots

from .snapshot_helpers import CLUSTER, PREFIX, spec_of

CREATE_SNAPSHOT = SnapshotAction.CREATE_SNAPSHOT
DELETE_SNAPSHOT = SnapshotAction.DELETE_SNAPSHOT

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def snap(
    identifier: str,
    age: timedelta | None,
    *,
    status: str = "available",
    snapshot_type: str = "manual",
    cluster: str = CLUSTER,
    now: datetime = NOW,
) -> ObservedSnapshot:
    return ObservedSnapshot(
        SnapshotId(identifier),
        DBClusterId(cluster),
        snapshot_type,
        status,
        None if age is None else now - age,
    )


def rules(**overrides: object) -> RetentionRules:
    base = RetentionRules(
        cluster=DBClusterId(CLUSTER),
        prefix=PREFIX,
        max_age=7 * DAY,
        min_keep=1,
        max_deletions=20,
        protect=("prod-emergency-*", "prod-manual-keep-*"),
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


# --- retention: random snapshot sets and policies -------------------------------------------

NAMES = st.sampled_from(
    [
        "prod-manual-",  # owned
        "PROD-MANUAL-",  # owned (RDS stores lower case; compare case-insensitively)
        "prod-manual-keep-",  # owned but protected
        "prod-emergency-",  # protected, other prefix
        "other-",  # unowned
        "awsbackup:job-prod-manual-",  # AWS Backup: never ours
        "rds:prod-manual-",  # automated naming
    ]
)
SNAPSHOTS = st.lists(
    st.builds(
        lambda stem, index, age_hours, status, kind, cluster: snap(
            f"{stem}{index:04d}",
            None if age_hours is None else timedelta(hours=age_hours),
            status=status,
            snapshot_type=kind,
            cluster=cluster,
        ),
        NAMES,
        st.integers(0, 9999),
        st.one_of(st.none(), st.integers(0, 24 * 30)),
        st.sampled_from(["available", "available", "creating", "failed", "deleting"]),
        st.sampled_from(["manual", "manual", "manual", "automated"]),
        st.sampled_from([CLUSTER, CLUSTER, CLUSTER, "aurora-staging"]),
    ),
    max_size=60,
    unique_by=lambda s: s.identifier.lower(),
)
RULES = st.builds(
    lambda days, min_keep, cap, protect: rules(
        max_age=timedelta(days=days), min_keep=min_keep, max_deletions=cap, protect=protect
    ),
    st.integers(1, 20),
    st.integers(0, 5),
    st.integers(1, 10),
    st.sampled_from([(), ("prod-manual-keep-*",), ("PROD-MANUAL-KEEP-*", "prod-emergency-*")]),
)


def owned_available(snapshots: list[ObservedSnapshot], policy: RetentionRules) -> list[ObservedSnapshot]:
    return [
        s
        for s in snapshots
        if is_owned(s, policy.cluster, policy.prefix) and s.status == "available" and s.created is not None
    ]


def converge(snapshots: list[ObservedSnapshot], policy: RetentionRules) -> tuple[list[ObservedSnapshot], int]:
    """Run retention passes, removing what each deletes, until one plans nothing."""
    passes = 0
    while True:
        passes += 1
        deleted = {d.snapshot.identifier for d in select_deletions(snapshots, policy, NOW).deletions}
        if not deleted:
            return snapshots, passes
        snapshots = [s for s in snapshots if s.identifier not in deleted]


@given(SNAPSHOTS, RULES)
def test_only_owned_available_unprotected_expired_manual_snapshots_are_deleted(
    snapshots: list[ObservedSnapshot], policy: RetentionRules
) -> None:
    """Deletions are only manual, available, unprotected, owned snapshots older than maxAge."""
    for deletion in select_deletions(snapshots, policy, NOW).deletions:
        s = deletion.snapshot
        assert s.snapshot_type == "manual"
        assert s.cluster == CLUSTER
        assert s.status == "available"
        assert s.identifier.lower().startswith(PREFIX)
        assert not s.identifier.startswith("awsbackup:")
        assert "keep-" not in s.identifier.lower() or not policy.protect
        assert not is_protected(s.identifier, policy.protect)
        assert s.created is not None
        assert NOW - s.created > policy.max_age


@given(SNAPSHOTS, RULES)
def test_at_most_the_cap_oldest_first_and_min_keep_survive(
    snapshots: list[ObservedSnapshot], policy: RetentionRules
) -> None:
    """A pass deletes at most the cap, oldest first, leaving at least minKeep available owned."""
    decision = select_deletions(snapshots, policy, NOW)
    deleted = [d.snapshot for d in decision.deletions]
    assert len(deleted) <= policy.max_deletions
    times = [s.created for s in deleted]
    assert times == sorted(times)  # type: ignore[type-var]
    before = owned_available(snapshots, policy)
    after = [s for s in before if s not in deleted]
    assert len(after) >= min(policy.min_keep, len(before))
    if decision.deferred:
        assert len(deleted) == policy.max_deletions
        newest_deleted = max(s.created for s in deleted if s.created)
        newest = sorted(before, key=lambda s: (s.created, s.identifier))[len(before) - policy.min_keep :]
        left = [
            s
            for s in after
            if s not in newest
            and s.created is not None
            and NOW - s.created > policy.max_age
            and not is_protected(s.identifier, policy.protect)
        ]
        assert all(s.created is not None and s.created >= newest_deleted for s in left)


@given(SNAPSHOTS, RULES)
def test_passes_converge_and_a_pass_over_the_result_plans_nothing(
    snapshots: list[ObservedSnapshot], policy: RetentionRules
) -> None:
    """Passes converge within ceil(expired/cap)+1, after which nothing is expired and deletable."""
    first = select_deletions(snapshots, policy, NOW)
    total = len(first.deletions) + first.deferred
    remaining, passes = converge(snapshots, policy)
    assert passes <= -(-total // policy.max_deletions) + 1
    if len(first.deletions) < policy.max_deletions:
        survivors = [s for s in snapshots if s not in [d.snapshot for d in first.deletions]]
        assert select_deletions(survivors, policy, NOW).deletions == ()
    kept_newest = sorted(owned_available(remaining, policy), key=lambda s: (s.created, s.identifier))[
        len(owned_available(remaining, policy)) - policy.min_keep :
    ]
    for s in owned_available(remaining, policy):
        expired = s.created is not None and NOW - s.created > policy.max_age
        if expired and not is_protected(s.identifier, policy.protect):
            assert s in kept_newest or policy.min_keep >= len(owned_available(remaining, policy))


def test_min_keep_holds_back_the_newest_expired_snapshot() -> None:
    """When every owned snapshot is expired, the newest minKeep of them are kept and counted."""
    snapshots = [snap(f"prod-manual-{i}", (10 + i) * DAY) for i in range(4)]
    decision = select_deletions(snapshots, rules(min_keep=1), NOW)
    assert [d.snapshot.identifier for d in decision.deletions] == [
        "prod-manual-3",
        "prod-manual-2",
        "prod-manual-1",
    ]
    assert decision.kept_for_min_keep == 1


def test_protected_snapshots_count_towards_min_keep_but_are_never_deleted() -> None:
    """A protected owned snapshot is among the kept ones and is never a deletion."""
    snapshots = [snap("prod-manual-keep-a", 20 * DAY), snap("prod-manual-b", 30 * DAY)]
    decision = select_deletions(snapshots, rules(min_keep=1), NOW)
    assert [d.snapshot.identifier for d in decision.deletions] == ["prod-manual-b"]


def test_deletion_reason_names_the_creation_time_and_max_age() -> None:
    """The reason of a deletion reads `expired: created <UTC minute>, older than maxAge 7d`."""
    snapshots = [snap("prod-manual-old", None), snap("prod-manual-new", HOUR)]
    snapshots[0] = replace(snapshots[0], created=datetime(2026, 11, 18, 3, 0, 41, tzinfo=UTC))
    (deletion,) = select_deletions(snapshots, rules(), NOW).deletions
    assert deletion.reason == "expired: created 2026-11-18T03:00Z, older than maxAge 7d"


def test_exactly_max_age_old_is_not_yet_expired() -> None:
    """A snapshot exactly maxAge old stays; one second older goes."""
    keep = snap("prod-manual-a", 7 * DAY)
    go = snap("prod-manual-b", 7 * DAY + timedelta(seconds=1))
    deleted = select_deletions([keep, go, snap("prod-manual-c", HOUR)], rules(), NOW).deletions
    assert [d.snapshot.identifier for d in deleted] == ["prod-manual-b"]


def test_creation_times_are_compared_as_instants_not_strings() -> None:
    """minKeep keeps the newest by instant even when an offset makes an older time read as later text."""
    plus_14 = timezone(timedelta(hours=14))
    older = replace(snap("prod-manual-a", None), created=(NOW - 8 * DAY).astimezone(plus_14))
    newer = snap("prod-manual-b", 7 * DAY + 12 * HOUR)
    assert older.created is not None
    assert newer.created is not None
    assert older.created.isoformat() > newer.created.isoformat()  # as text, "a" looks newer
    deleted = select_deletions([older, newer], rules(min_keep=1), NOW).deletions
    assert [d.snapshot.identifier for d in deleted] == ["prod-manual-a"]


def test_snapshot_type_is_checked_not_only_the_name() -> None:
    """An automated snapshot is never deleted, even when its identifier starts with the prefix."""
    automated = snap("prod-manual-auto", 30 * DAY, snapshot_type="automated")
    assert select_deletions([automated, snap("prod-manual-x", HOUR)], rules(), NOW).deletions == ()


# --- slots -------------------------------------------------------------------------------------


def slot(
    now: datetime,
    schedule: str = "0 3 * * *",
    tz: str = "UTC",
    deadline: timedelta = HOUR,
    max_age: timedelta = 7 * DAY,
    existing: tuple[str, ...] = (),
) -> object:
    return decide_slot(schedule, tz, deadline, max_age, PREFIX, existing, now)


def test_daily_slot_is_due_at_its_time_and_names_the_snapshot_in_utc() -> None:
    """At 03:00 UTC the daily slot is due, named prefix + 20261118-0300, with the next slot a day later."""
    decision = decide_slot(
        "0 3 * * *", "UTC", HOUR, 7 * DAY, PREFIX, (), datetime(2026, 11, 18, 3, tzinfo=UTC)
    )
    assert decision.state == SlotState.DUE
    assert decision.snapshot_id == "prod-manual-20261118-0300"
    assert decision.next_slot == datetime(2026, 11, 19, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "state"),
    [
        (datetime(2026, 11, 18, 3, 59, 59, tzinfo=UTC), SlotState.DUE),
        (datetime(2026, 11, 18, 4, 0, 0, tzinfo=UTC), SlotState.MISSED),
        (datetime(2026, 11, 18, 23, 0, 0, tzinfo=UTC), SlotState.MISSED),
        (datetime(2026, 11, 18, 2, 59, 59, tzinfo=UTC), SlotState.MISSED),  # yesterday's slot
    ],
    ids=["inside-deadline", "at-deadline", "long-after", "before-todays-slot"],
)
def test_a_slot_is_taken_only_while_late_by_less_than_the_deadline(now: datetime, state: SlotState) -> None:
    """A slot missed by less than startingDeadline is due; at or past it, it is missed."""
    assert decide_slot("0 3 * * *", "UTC", HOUR, 7 * DAY, PREFIX, (), now).state == state


def test_restart_right_after_a_slot_does_not_take_it_again() -> None:
    """A snapshot of the slot's name in any state (here: just created) means the slot is taken."""
    now = datetime(2026, 11, 18, 3, 0, 5, tzinfo=UTC)
    taken = decide_slot("0 3 * * *", "UTC", HOUR, 7 * DAY, PREFIX, ["PROD-MANUAL-20261118-0300"], now)
    assert taken.state == SlotState.TAKEN


def test_after_days_of_outage_only_the_latest_slot_is_taken() -> None:
    """Back after three days down, inside today's deadline: one snapshot, for today's slot."""
    now = datetime(2026, 11, 21, 3, 30, tzinfo=UTC)
    decision = decide_slot("0 3 * * *", "UTC", HOUR, 7 * DAY, PREFIX, (), now)
    assert (decision.state, decision.snapshot_id) == (SlotState.DUE, "prod-manual-20261121-0300")


@pytest.mark.parametrize("weekday", ["SUN", "0", "7"])
def test_weekly_slot_uses_crontab_weekdays(weekday: str) -> None:
    """`0 2 * * SUN|0|7` fires on Sunday 2026-11-22 (not Monday, as some libraries number)."""
    decision = decide_slot(
        f"0 2 * * {weekday}", "UTC", HOUR, 30 * DAY, PREFIX, (), datetime(2026, 11, 24, tzinfo=UTC)
    )
    assert decision.slot == datetime(2026, 11, 22, 2, tzinfo=UTC)
    assert decision.next_slot == datetime(2026, 11, 29, 2, tzinfo=UTC)
    assert decision.state == SlotState.MISSED


@pytest.mark.parametrize(
    ("now", "expected_slot"),
    [
        # Europe/Berlin springs forward 2026-03-29 02:00 -> 03:00: 02:30 does not exist, the
        # slot starts at the transition (01:00 UTC).
        (datetime(2026, 3, 29, 1, 10, tzinfo=UTC), datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),
        # It falls back 2026-10-25 03:00 -> 02:00: 02:30 happens twice, the slot fires once, first.
        (datetime(2026, 10, 25, 0, 40, tzinfo=UTC), datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
        (datetime(2026, 10, 25, 1, 40, tzinfo=UTC), datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
        # Ordinary days either side: 02:30 CET = 01:30 UTC, 02:30 CEST = 00:30 UTC.
        (datetime(2026, 3, 28, 1, 40, tzinfo=UTC), datetime(2026, 3, 28, 1, 30, tzinfo=UTC)),
        (datetime(2026, 3, 30, 0, 40, tzinfo=UTC), datetime(2026, 3, 30, 0, 30, tzinfo=UTC)),
    ],
    ids=["spring-gap", "fall-first", "fall-second-occurrence", "before-dst", "after-dst"],
)
def test_slots_in_a_time_zone_follow_its_dst_rules(now: datetime, expected_slot: datetime) -> None:
    """Slots are wall times in timeZone mapped to one instant each, across DST changes."""
    decision = decide_slot("30 2 * * *", "Europe/Berlin", 3 * HOUR, 7 * DAY, PREFIX, (), now)
    assert decision.slot == expected_slot
    assert decision.snapshot_id == slot_snapshot_id(PREFIX, expected_slot)


def test_fall_back_repeat_does_not_take_the_slot_twice() -> None:
    """During the repeated hour, the slot taken at its first occurrence stays taken."""
    first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    existing = [slot_snapshot_id(PREFIX, first)]
    later = datetime(2026, 10, 25, 1, 35, tzinfo=UTC)  # 02:35 CET, the second 02:30 has passed
    decision = decide_slot("30 2 * * *", "Europe/Berlin", 3 * HOUR, 7 * DAY, PREFIX, existing, later)
    assert decision.state == SlotState.TAKEN


def test_a_slot_older_than_max_age_is_never_taken() -> None:
    """With maxAge shorter than the lateness, the slot is neither due nor reported missed."""
    now = datetime(2026, 11, 18, 5, tzinfo=UTC)
    decision = decide_slot("0 3 * * *", "UTC", 6 * HOUR, HOUR, PREFIX, (), now)
    assert decision.state == SlotState.EXPIRED


@given(
    st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)),
    st.sampled_from(["0 3 * * *", "30 2 * * *", "0 2 * * SUN", "*/15 * * * *", "0 0 1 * *"]),
    st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]),
    st.integers(1, 600),
)
def test_the_slot_is_the_latest_fire_and_due_exactly_inside_the_deadline(
    now: datetime, schedule: str, tz: str, deadline_minutes: int
) -> None:
    """slot <= now < next slot, and the slot is due exactly when late by less than the deadline."""
    deadline = timedelta(minutes=deadline_minutes)
    decision = decide_slot(schedule, tz, deadline, 400 * DAY, PREFIX, (), now)
    assert decision.slot is not None
    assert decision.next_slot is not None
    assert decision.slot <= now < decision.next_slot
    assert (decision.state == SlotState.DUE) == (now - decision.slot < deadline)


def test_lateness_reads_in_two_units() -> None:
    """Lateness is shown to the two largest units."""
    assert [
        describe_lateness(timedelta(seconds=s)) for s in (0, 45, 300, 7530, 3 * 86400 + 4 * 3600 + 5)
    ] == [
        "0s",
        "45s",
        "5m",
        "2h5m",
        "3d4h",
    ]


# --- the plan of one resource (pure) ------------------------------------------------------------


def test_plan_lists_deletions_with_reasons_the_due_slot_and_the_next_slot() -> None:
    """The plan deletes expired snapshots first, then creates the due slot; notes give the next slot."""
    now = datetime(2026, 11, 25, 3, 10, tzinfo=UTC)
    spec = spec_of(schedule="0 3 * * *")
    observed = ClusterSnapshots(
        DBClusterId(CLUSTER),
        (
            snap("prod-manual-20261117-0300", 8 * DAY, now=now),
            snap("prod-manual-20261124-0300", DAY, now=now),
            snap("prod-emergency-20261101-1200", 24 * DAY, now=now),
        ),
    )
    plan = plan_snapshots("aurora", spec, observed, now)
    assert [(a.action, a.target) for a in plan.actions] == [
        (DELETE_SNAPSHOT, "prod-manual-20261117-0300"),
        (CREATE_SNAPSHOT, "prod-manual-20261125-0300"),
    ]
    assert plan.actions[0].reason.startswith("expired: created 2026-11-17T03:10Z, older than maxAge 7d")
    assert (
        plan.actions[1].reason
        == "scheduled slot 2026-11-25T03:00Z (0 3 * * * in UTC), 10m late, within startingDeadline 1h"
    )
    assert {"Key": "managed-by", "Value": "homeostat"} in plan.actions[1].params["Tags"]
    assert {"Key": "homeostat-resource", "Value": "aurora"} in plan.actions[1].params["Tags"]
    assert plan.notes == ("next slot 2026-11-26T03:00Z (0 3 * * * in UTC)",)
    assert list(plan.measurements) == [
        Measurement(NEWEST_AGE, {"name": "aurora"}, DAY.total_seconds()),
        Measurement(OWNED, {"name": "aurora"}, 2.0),
    ]


def test_a_missed_slot_is_a_note_not_an_action() -> None:
    """A slot missed beyond the deadline is reported in the notes; the plan is otherwise in sync."""
    now = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    observed = ClusterSnapshots(
        DBClusterId(CLUSTER), (snap("prod-manual-20261124-0300", 30 * HOUR, now=now),)
    )
    plan = plan_snapshots("aurora", spec_of(schedule="0 3 * * *"), observed, now)
    assert plan.in_sync
    assert plan.notes[0] == "missed slot 2026-11-25T03:00Z: 6h late, beyond startingDeadline 1h; not taken"


def test_held_back_deletions_are_noted() -> None:
    """Expired snapshots held back by minKeep or by the cap are counted in the notes."""
    observed = ClusterSnapshots(
        DBClusterId(CLUSTER), tuple(snap(f"prod-manual-{i:02d}", (10 + i) * DAY) for i in range(5))
    )
    plan = plan_snapshots("aurora", spec_of(retention={"maxDeletionsPerRun": 2}), observed, NOW)
    assert len(plan.actions) == 2
    assert plan.notes == (
        "1 expired snapshot(s) kept to honour minKeep 1",
        "2 more expired snapshot(s) left for later passes (maxDeletionsPerRun 2)",
    )


def test_no_available_owned_snapshot_reports_an_infinite_age() -> None:
    """With no available owned snapshot, the newest age is +Inf so that a freshness alert fires."""
    observed = ClusterSnapshots(DBClusterId(CLUSTER), (snap("prod-manual-x", None, status="creating"),))
    plan = plan_snapshots("aurora", spec_of(), observed, NOW)
    assert Measurement(NEWEST_AGE, {"name": "aurora"}, float("inf")) in plan.measurements
    assert Measurement(OWNED, {"name": "aurora"}, 1.0) in plan.measurements


def test_an_incomplete_listing_deletes_nothing_but_still_takes_the_slot() -> None:
    """A listing cut short is an error and deletes nothing, but the due slot is still created."""
    now = datetime(2026, 11, 25, 3, 5, tzinfo=UTC)
    observed = ClusterSnapshots(
        DBClusterId(CLUSTER),
        (snap("prod-manual-20261101-0300", 24 * DAY, now=now),),
        listing_error="listing snapshots of cluster aurora-prod failed on page 2: Throttling",
    )
    plan = plan_snapshots("aurora", spec_of(schedule="0 3 * * *"), observed, now)
    assert plan.error is not None
    assert plan.error.endswith("no snapshot deleted this pass (fail closed)")
    assert [a.action for a in plan.actions] == [CREATE_SNAPSHOT]
    assert plan.measurements == ()
