"""Specification of maintenance window timing: membership, next start and end, DST, overlaps.

All instants are UTC; the functions under test are pure and take the instant
as a parameter, so no clock is patched.
"""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from homeostat.desired_state.windows import (
    Edges,
    edges,
    is_active,
    last_end,
    wake_instants,
)
from homeostat.reconcilers.maintenance_window import MaintenanceWindowSpec


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def recurring(schedule: str, duration: timedelta, zone: str = "UTC") -> MaintenanceWindowSpec:
    return MaintenanceWindowSpec(schedule=schedule, duration=duration, timeZone=zone)


def one_off(start: datetime, end: datetime) -> MaintenanceWindowSpec:
    return MaintenanceWindowSpec(start=start, end=end)


SUNDAY = recurring("0 2 * * SUN", timedelta(hours=4))


# --- the Sunday window of the runbook -------------------------------------------------------


@pytest.mark.parametrize(
    ("instant", "active"),
    [
        (utc(2027, 3, 7, 1, 59, 59), False),
        (utc(2027, 3, 7, 2, 0, 0), True),
        (utc(2027, 3, 7, 5, 59, 59), True),
        (utc(2027, 3, 7, 6, 0, 0), False),
        (utc(2027, 3, 10, 3, 0, 0), False),
    ],
    ids=["just-before", "at-start", "just-before-end", "at-end", "wednesday"],
)
def test_sunday_window_is_active_from_its_start_inclusive_to_its_end_exclusive(
    instant: datetime, active: bool
) -> None:
    """`0 2 * * SUN` for 4h is active on [Sunday 02:00, Sunday 06:00) UTC and nowhere else."""
    assert is_active(SUNDAY, instant) is active


def test_next_start_and_end_of_an_inactive_window_are_the_coming_occurrence() -> None:
    """Before a window, the next start and end are those of its coming occurrence."""
    found = edges(SUNDAY, utc(2027, 3, 10, 12))
    assert found == Edges(False, utc(2027, 3, 14, 2), utc(2027, 3, 14, 6))


def test_next_end_of_an_active_window_is_the_current_end_and_next_start_the_following_week() -> None:
    """During a window, next end is the current end and next start the occurrence after it."""
    assert edges(SUNDAY, utc(2027, 3, 14, 3)) == Edges(True, utc(2027, 3, 21, 2), utc(2027, 3, 14, 6))


@pytest.mark.parametrize("schedule", ["0 2 * * 0", "0 2 * * SUN", "0 2 * * 7", "0 2 * * sun"])
def test_weekday_zero_seven_and_sun_all_mean_sunday(schedule: str) -> None:
    """Day-of-week 0, 7 and SUN are Sunday (crontab), not Monday as in some schedulers."""
    start = edges(recurring(schedule, timedelta(hours=4)), utc(2027, 1, 1)).next_start
    assert start == utc(2027, 1, 3, 2)
    assert start is not None
    assert start.weekday() == 6


def test_wake_instants_are_the_next_start_and_end() -> None:
    """The daemon is woken at the window's next switch-on and switch-off instants."""
    assert wake_instants(SUNDAY, utc(2027, 3, 10)) == [utc(2027, 3, 14, 2), utc(2027, 3, 14, 6)]
    assert wake_instants(SUNDAY, utc(2027, 3, 14, 2)) == [utc(2027, 3, 14, 6), utc(2027, 3, 21, 2)]


def test_last_end_is_the_most_recent_switch_off_and_none_while_active() -> None:
    """After a window, last_end is when it ended; during one there is none."""
    assert last_end(SUNDAY, utc(2027, 3, 10)) == utc(2027, 3, 7, 6)
    assert last_end(SUNDAY, utc(2027, 3, 7, 6)) == utc(2027, 3, 7, 6)
    assert last_end(SUNDAY, utc(2027, 3, 7, 5)) is None
    assert last_end(one_off(utc(2026, 12, 6, 2), utc(2026, 12, 6, 6)), utc(2026, 12, 1)) is None


# --- one-off windows ---------------------------------------------------------------------------


def test_one_off_window_before_during_and_after() -> None:
    """A one-off window is active on [start, end) and has no edges once it is over."""
    window = one_off(utc(2026, 12, 6, 2), utc(2026, 12, 6, 6))
    assert edges(window, utc(2026, 12, 6, 1)) == Edges(False, utc(2026, 12, 6, 2), utc(2026, 12, 6, 6))
    assert edges(window, utc(2026, 12, 6, 2)) == Edges(True, None, utc(2026, 12, 6, 6))
    assert edges(window, utc(2026, 12, 6, 6)) == Edges(False, None, None)
    assert wake_instants(window, utc(2026, 12, 7)) == []


def test_one_off_window_given_with_an_offset_is_compared_as_an_instant() -> None:
    """A one-off start with a +01:00 offset starts at the same instant as its UTC spelling."""
    window = MaintenanceWindowSpec.model_validate(
        {"start": "2026-12-06T03:00:00+01:00", "end": "2026-12-06T07:00:00+01:00"}
    )
    assert is_active(window, utc(2026, 12, 6, 2))
    assert not is_active(window, utc(2026, 12, 6, 1, 59))


# --- DST: Europe/Berlin and America/New_York, both changes of 2027 --------------------------------


@pytest.mark.parametrize(
    ("schedule", "zone", "after", "start", "end"),
    [
        # Berlin springs forward 2027-03-28 02:00 CET -> 03:00 CEST (01:00 UTC):
        # 02:30 does not exist, so the window starts at the transition and lasts 4 real hours.
        ("30 2 * * SUN", "Europe/Berlin", utc(2027, 3, 27), utc(2027, 3, 28, 1), utc(2027, 3, 28, 5)),
        # A window spanning the change: 00:00 CET (23:00 UTC) + 4h = 05:00 CEST.
        ("0 0 * * SUN", "Europe/Berlin", utc(2027, 3, 27), utc(2027, 3, 27, 23), utc(2027, 3, 28, 3)),
        # Berlin falls back 2027-10-31 03:00 CEST -> 02:00 CET: 02:00 happens twice; start at the first.
        ("0 2 * * SUN", "Europe/Berlin", utc(2027, 10, 30), utc(2027, 10, 31, 0), utc(2027, 10, 31, 4)),
        # New York springs forward 2027-03-14 02:00 EST -> 03:00 EDT (07:00 UTC).
        ("0 2 * * SUN", "America/New_York", utc(2027, 3, 13), utc(2027, 3, 14, 7), utc(2027, 3, 14, 11)),
        ("0 0 * * SUN", "America/New_York", utc(2027, 3, 13), utc(2027, 3, 14, 5), utc(2027, 3, 14, 9)),
        # New York falls back 2027-11-07 02:00 EDT -> 01:00 EST: 01:30 happens twice; start at the first.
        (
            "30 1 * * SUN",
            "America/New_York",
            utc(2027, 11, 6),
            utc(2027, 11, 7, 5, 30),
            utc(2027, 11, 7, 9, 30),
        ),
    ],
    ids=[
        "berlin-spring-gap",
        "berlin-spring-spanning",
        "berlin-fall-repeat",
        "newyork-spring-gap",
        "newyork-spring-spanning",
        "newyork-fall-repeat",
    ],
)
def test_dst_changes_of_2027(
    schedule: str, zone: str, after: datetime, start: datetime, end: datetime
) -> None:
    """Starts in a gap begin at the transition, repeated hours start once, durations are real time."""
    window = recurring(schedule, timedelta(hours=4), zone)
    assert edges(window, after) == Edges(False, start, end)
    assert end - start == timedelta(hours=4)


def test_repeated_hour_does_not_start_the_window_a_second_time() -> None:
    """After the fall-back, the second 01:30 in New York is not a new start: the next is a week on."""
    window = recurring("30 1 * * SUN", timedelta(minutes=30), "America/New_York")
    # The first 01:30 EDT window ended at 06:00 UTC; at 06:30 UTC it is 01:30 EST again.
    assert not is_active(window, utc(2027, 11, 7, 6, 30))
    assert edges(window, utc(2027, 11, 7, 6)).next_start == utc(2027, 11, 14, 6, 30)


def test_berlin_window_is_at_the_same_wall_time_either_side_of_a_change() -> None:
    """A 02:00 Berlin window is 01:00 UTC in winter and 00:00 UTC in summer."""
    window = recurring("0 2 * * SUN", timedelta(hours=1), "Europe/Berlin")
    assert edges(window, utc(2027, 3, 20)).next_start == utc(2027, 3, 21, 1)
    assert edges(window, utc(2027, 4, 1)).next_start == utc(2027, 4, 4, 0)


# --- overlaps and windows longer than their period ---------------------------------------------


def test_window_longer_than_its_period_merges_occurrences() -> None:
    """Mon and Tue 02:00 for 30h: Monday's window runs into Tuesday's, so one run ends Wednesday 08:00."""
    window = recurring("0 2 * * MON,TUE", timedelta(hours=30))
    assert edges(window, utc(2027, 3, 8, 3)) == Edges(True, utc(2027, 3, 15, 2), utc(2027, 3, 10, 8))
    assert is_active(window, utc(2027, 3, 9, 7, 59))
    assert is_active(window, utc(2027, 3, 10, 7, 59))
    assert not is_active(window, utc(2027, 3, 10, 8))


def test_touching_occurrences_do_not_end_in_between() -> None:
    """Occurrences 02:00-04:00 and 04:00-06:00 are one window from 02:00 to 06:00."""
    window = recurring("0 2,4 * * SUN", timedelta(hours=2))
    assert is_active(window, utc(2027, 3, 7, 4))
    assert edges(window, utc(2027, 3, 7, 2)).next_end == utc(2027, 3, 7, 6)


def test_window_that_never_ends_has_no_end_edge() -> None:
    """Hourly occurrences lasting 90 minutes keep the window active: no end within the horizon."""
    window = recurring("0 * * * *", timedelta(minutes=90))
    assert edges(window, utc(2027, 3, 7, 4, 30)) == Edges(True, None, None)


# --- properties ----------------------------------------------------------------------------------

SCHEDULES = [
    ("0 2 * * SUN", timedelta(minutes=1), timedelta(days=9)),
    ("30 2 * * *", timedelta(minutes=1), timedelta(hours=30)),
    ("0 1,2,3 * * *", timedelta(minutes=1), timedelta(hours=3)),
    ("15 2 1 * *", timedelta(minutes=1), timedelta(days=3)),
    ("*/20 1-3 * * 0,6", timedelta(minutes=1), timedelta(hours=2)),
]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]


@st.composite
def windows(draw: st.DrawFn) -> MaintenanceWindowSpec:
    if draw(st.booleans()):
        start = draw(instants)
        length = timedelta(seconds=draw(st.integers(min_value=1, max_value=10 * 86400)))
        return one_off(start, start + length)
    schedule, shortest, longest = draw(st.sampled_from(SCHEDULES))
    seconds = draw(
        st.integers(min_value=int(shortest.total_seconds()), max_value=int(longest.total_seconds()))
    )
    return recurring(schedule, timedelta(seconds=seconds), draw(st.sampled_from(ZONES)))


instants = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)
fractions = st.floats(min_value=0, max_value=1, exclude_max=True)


def between(low: datetime, high: datetime, fraction: float) -> datetime:
    """An instant in [low, high), `fraction` of the way (whole microseconds, never high itself)."""
    span = (high - low) // timedelta(microseconds=1)
    return low + timedelta(microseconds=min(int(span * fraction), span - 1))


@given(windows(), instants, fractions)
def test_membership_agrees_with_the_next_edges(
    window: MaintenanceWindowSpec, now: datetime, fraction: float
) -> None:
    """Active windows stay active until next_end; inactive ones stay inactive until next_start."""
    found = edges(window, now)
    assert found.active is is_active(window, now)
    if found.active:
        if found.next_end is not None:
            assert found.next_end > now
            assert not is_active(window, found.next_end)
            assert is_active(window, between(now, found.next_end, fraction))
            assert found.next_start is None or found.next_start > found.next_end
    elif found.next_start is not None:
        assert found.next_start > now
        assert is_active(window, found.next_start)
        assert not is_active(window, between(now, found.next_start, fraction))
        assert found.next_end is None or found.next_end > found.next_start


@given(windows(), instants)
def test_a_window_never_ends_before_it_starts(window: MaintenanceWindowSpec, now: datetime) -> None:
    """From its next start, the window's next end lies strictly later."""
    start = edges(window, now).next_start
    if start is not None:
        end = edges(window, start).next_end
        assert end is None or end > start
        assert wake_instants(window, now) == sorted(wake_instants(window, now))
    ended = last_end(window, now)
    assert ended is None or (ended <= now and not is_active(window, ended))
