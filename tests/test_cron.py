"""Specification of the pure cron module: crontab weekday numbering, time zones and DST.

Crontab(5) semantics: day-of-week 0 and 7 are Sunday; a wall time that a DST
gap skips starts at the first valid instant after the gap; a wall time that
DST repeats fires once, at its first occurrence.
"""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from homeostat.desired_state.cron import (
    fires_between,
    iter_fires,
    next_fire,
    previous_fire,
    validate_cron,
    validate_time_zone,
    wall_to_instant,
)

SUNDAY = 6  # datetime.weekday()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize("weekday", ["0", "7", "SUN", "sun", "Sun"])
def test_zero_seven_and_sun_all_mean_sunday(weekday: str) -> None:
    """`0 2 * * 0`, `0 2 * * 7` and `0 2 * * SUN` all fire on Sunday at 02:00."""
    fire = next_fire(f"0 2 * * {weekday}", "UTC", utc(2026, 11, 25))  # a Wednesday
    assert fire == utc(2026, 11, 29, 2)
    assert fire.weekday() == SUNDAY


def test_weekday_one_is_monday() -> None:
    """Day-of-week 1 is Monday (not Tuesday, as in schedulers that count from Monday = 0)."""
    assert next_fire("0 2 * * 1", "UTC", utc(2026, 11, 25)) == utc(2026, 11, 30, 2)
    assert next_fire("0 2 * * MON", "UTC", utc(2026, 11, 25)) == utc(2026, 11, 30, 2)


def test_weekday_ranges_and_month_names() -> None:
    """Ranges of weekday names and month names are accepted with crontab meaning."""
    fires = fires_between("0 9 * DEC MON-FRI", "UTC", utc(2026, 11, 30), utc(2026, 12, 6, 23))
    assert [f.day for f in fires] == [1, 2, 3, 4]


@pytest.mark.parametrize("expression", ["0 2 * * 8", "0 2 * *", "0 2 * * * *", "60 * * * *", "0 24 * * *"])
def test_invalid_expressions_are_rejected(expression: str) -> None:
    """Out-of-range fields and wrong field counts raise ValueError."""
    with pytest.raises(ValueError, match="invalid cron"):
        validate_cron(expression)


def test_an_expression_that_never_fires_is_rejected() -> None:
    """February 30th never comes, so the expression is invalid."""
    with pytest.raises(ValueError, match="never fires"):
        validate_cron("0 2 30 2 *")


def test_whitespace_is_normalised() -> None:
    """Extra blanks between fields are accepted and collapsed."""
    assert validate_cron("0  2 *\t* SUN") == "0 2 * * SUN"


def test_time_zones_must_be_iana_names() -> None:
    """IANA names pass; anything else raises ValueError."""
    assert validate_time_zone("Europe/Berlin") == "Europe/Berlin"
    for bad in ("Mars/Olympus", "CEST+2", "../etc/passwd", ""):
        with pytest.raises(ValueError, match="time zone"):
            validate_time_zone(bad)


def test_schedules_are_evaluated_in_their_time_zone() -> None:
    """02:00 in Europe/Berlin is 01:00 UTC in winter and 00:00 UTC in summer."""
    assert next_fire("0 2 * * *", "Europe/Berlin", utc(2026, 1, 10)) == utc(2026, 1, 10, 1)
    assert next_fire("0 2 * * *", "Europe/Berlin", utc(2026, 7, 10)) == utc(2026, 7, 11, 0)


def test_a_start_in_a_dst_gap_begins_at_the_first_valid_instant() -> None:
    """Berlin skips 02:00-03:00 on 2026-03-29: a 02:30 start begins at 03:00 local (01:00 UTC)."""
    fire = next_fire("30 2 * * *", "Europe/Berlin", utc(2026, 3, 28, 12))
    assert fire == utc(2026, 3, 29, 1)
    # The day before and after keep their ordinary wall time.
    assert fires_between("30 2 * * *", "Europe/Berlin", utc(2026, 3, 27), utc(2026, 3, 31)) == [
        utc(2026, 3, 27, 1, 30),
        utc(2026, 3, 28, 1, 30),
        utc(2026, 3, 29, 1),
        utc(2026, 3, 30, 0, 30),
    ]


def test_gap_starts_in_new_york_collapse_to_the_transition() -> None:
    """New York skips 02:00-03:00 on 2026-03-08: 02:00 and 02:30 both start at 03:00 EDT, once."""
    fires = fires_between("*/30 * * * *", "America/New_York", utc(2026, 3, 8, 6, 15), utc(2026, 3, 8, 8))
    assert fires == [utc(2026, 3, 8, 6, 30), utc(2026, 3, 8, 7), utc(2026, 3, 8, 7, 30), utc(2026, 3, 8, 8)]


def test_a_repeated_hour_fires_once() -> None:
    """Berlin repeats 02:00-03:00 on 2026-10-25: a 02:30 schedule fires once, at the first 02:30."""
    fires = fires_between("30 2 * * *", "Europe/Berlin", utc(2026, 10, 24), utc(2026, 10, 26, 12))
    assert fires == [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]


def test_durations_across_dst_are_real_time() -> None:
    """Fires are instants: consecutive daily fires across a DST change are 23 or 25 hours apart."""
    spring = fires_between("0 12 * * *", "Europe/Berlin", utc(2026, 3, 28), utc(2026, 3, 30))
    autumn = fires_between("0 12 * * *", "Europe/Berlin", utc(2026, 10, 24), utc(2026, 10, 26))
    assert spring[1] - spring[0] == timedelta(hours=23)
    assert autumn[1] - autumn[0] == timedelta(hours=25)


def test_wall_to_instant_maps_gap_and_repeat() -> None:
    """A gap wall time maps to the transition; a repeated wall time maps to its first occurrence."""
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    assert wall_to_instant(datetime(2026, 3, 29, 2, 30), berlin) == utc(2026, 3, 29, 1)
    assert wall_to_instant(datetime(2026, 10, 25, 2, 30), berlin) == utc(2026, 10, 25, 0, 30)
    assert wall_to_instant(datetime(2026, 6, 1, 2, 30), berlin) == utc(2026, 6, 1, 0, 30)


def test_next_fire_is_strictly_after_and_previous_is_at_or_before() -> None:
    """At a fire instant, next_fire moves on and previous_fire returns that instant."""
    at = utc(2026, 11, 29, 2)
    assert next_fire("0 2 * * SUN", "UTC", at) == utc(2026, 12, 6, 2)
    assert previous_fire("0 2 * * SUN", "UTC", at) == at
    assert previous_fire("0 2 * * SUN", "UTC", at - timedelta(seconds=1)) == utc(2026, 11, 22, 2)


def test_naive_instants_are_refused() -> None:
    """Instants must be timezone-aware; a naive datetime is a programming error."""
    with pytest.raises(ValueError, match="timezone-aware"):
        next_fire("0 2 * * *", "UTC", datetime(2026, 1, 1))


def test_iter_fires_is_strictly_increasing() -> None:
    """iter_fires yields strictly increasing instants, across a DST change."""
    fires = iter_fires("*/20 * * * *", "Europe/Berlin", utc(2026, 10, 24, 23))
    values = [next(fires) for _ in range(12)]
    assert values == sorted(set(values))


# --- properties -------------------------------------------------------------------------------

EXPRESSIONS = st.sampled_from(
    [
        "0 2 * * SUN",
        "0 2 * * 7",
        "30 2 * * *",
        "*/15 * * * *",
        "0 3 * * *",
        "5 1-3 * * 1-5",
        "0 0 1 * *",
        "0 0 * * *",
        "30 1 * * *",
        "0 2 29 2 *",
        "45 23 * * 6",
        "0 2 * * 0",
        "0,30 2 * 3,10 SUN",
    ]
)
ZONES = st.sampled_from(
    ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "America/Santiago"]
)
INSTANTS = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
)


@given(expression=EXPRESSIONS, zone=ZONES, t=INSTANTS)
def test_next_fire_is_a_fire_after_t(expression: str, zone: str, t: datetime) -> None:
    """next_fire(t) > t, and previous_fire(next_fire(t)) == next_fire(t)."""
    fire = next_fire(expression, zone, t)
    assert fire > t
    assert previous_fire(expression, zone, fire) == fire


@given(expression=EXPRESSIONS, zone=ZONES, t=INSTANTS)
def test_previous_and_next_fire_bracket_t(expression: str, zone: str, t: datetime) -> None:
    """previous_fire(t) <= t < next_fire(t), and no fire lies strictly between them."""
    before = previous_fire(expression, zone, t)
    after = next_fire(expression, zone, t)
    assert before <= t < after
    assert next_fire(expression, zone, before) == after
    assert fires_between(expression, zone, before, after) == [after]


@given(zone=ZONES, t=INSTANTS)
def test_zero_and_seven_agree_everywhere(zone: str, t: datetime) -> None:
    """Day-of-week 0, 7 and SUN give identical schedules in every zone."""
    fires = {next_fire(f"0 2 * * {day}", zone, t) for day in ("0", "7", "SUN")}
    assert len(fires) == 1


def _transitions(zone_name: str, years: range) -> list[datetime]:
    """UTC instants at which the zone's offset changes (found by a daily scan and bisection)."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(zone_name)
    found: list[datetime] = []
    day = utc(years.start, 1, 1)
    end = utc(years.stop, 1, 1)
    while day < end:
        nxt = day + timedelta(days=1)
        if day.astimezone(zone).utcoffset() != nxt.astimezone(zone).utcoffset():
            low, high = day, nxt
            while high - low > timedelta(minutes=1):
                mid = low + (high - low) / 2
                if mid.astimezone(zone).utcoffset() == low.astimezone(zone).utcoffset():
                    low = mid
                else:
                    high = mid
            found.append(high.replace(second=0, microsecond=0))
        day = nxt
    return found


DST_ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago"]
TRANSITIONS = [(zone, t) for zone in DST_ZONES for t in _transitions(zone, range(2025, 2029))]
NEAR_TRANSITIONS = st.tuples(
    st.sampled_from(TRANSITIONS), st.integers(min_value=-26 * 60, max_value=26 * 60)
).map(lambda pair: (pair[0][0], pair[0][1] + timedelta(minutes=pair[1])))


@given(expression=EXPRESSIONS, near=NEAR_TRANSITIONS)
def test_fire_properties_hold_around_dst_changes(expression: str, near: tuple[str, datetime]) -> None:
    """Around every DST change the bracket properties still hold: previous <= t < next, none between."""
    zone, t = near
    fire = next_fire(expression, zone, t)
    assert fire > t
    assert previous_fire(expression, zone, fire) == fire
    before = previous_fire(expression, zone, t)
    assert before <= t
    assert next_fire(expression, zone, before) == fire


def test_transitions_were_found() -> None:
    """The DST property test really samples transitions (two per year per zone)."""
    assert len(TRANSITIONS) == 2 * 4 * len(DST_ZONES)


@pytest.mark.parametrize(
    "expression",
    [
        pytest.param("R 3 * * *", id="croniter-random"),
        pytest.param("0 2 L * *", id="last-day"),
        pytest.param("0 2 15W * *", id="nearest-weekday"),
        pytest.param("0 2 * * SUN#1", id="nth-weekday"),
        pytest.param("0 2 ? * *", id="question-mark"),
        pytest.param("@daily 1 2 3 4", id="macro"),
        pytest.param("0 2 * FOO *", id="unknown-month-name"),
        pytest.param("0 2 * * SUNDAY", id="long-day-name"),
        pytest.param("0 2 * * 8", id="day-8"),
        pytest.param("0 2 * * 5-2", id="reversed-range"),
    ],
)
def test_only_crontab5_syntax_is_accepted(expression: str) -> None:
    """Extensions croniter accepts (R, L, W, #, ?) and out-of-range days are validation errors."""
    with pytest.raises(ValueError, match="invalid cron"):
        validate_cron(expression)


@pytest.mark.parametrize("expression", ["0 2 * * 7-7", "0 2 * * 7", "0 2 * * SUN-SUN", "0 2 * * 0/7"])
def test_a_day_of_week_range_ending_at_7_means_sunday_only(expression: str) -> None:
    """7 is Sunday also inside ranges and steps (croniter alone would fire every day for 7-7)."""
    fires = fires_between(
        validate_cron(expression),
        "UTC",
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 11, 29, tzinfo=UTC),
    )
    assert fires
    assert {f.strftime("%a") for f in fires} == {"Sun"}


def test_fri_sun_range_spans_the_weekend() -> None:
    """FRI-SUN is Friday, Saturday and Sunday."""
    fires = fires_between(
        validate_cron("0 2 * * FRI-SUN"),
        "UTC",
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 11, 15, tzinfo=UTC),
    )
    assert {f.strftime("%a") for f in fires} == {"Fri", "Sat", "Sun"}


def test_day_of_month_step_and_weekday_combine_with_and_when_one_starts_with_star() -> None:
    """`*/5` and MON: Vixie cron fires on Mondays that are also day 1, 6, 11, ... (not either)."""
    fires = fires_between(
        validate_cron("0 0 */5 * MON"),
        "UTC",
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 12, 31, tzinfo=UTC),
    )
    assert [f.day for f in fires] == [16, 21]
    both_restricted = fires_between(
        validate_cron("0 0 1 * MON"),
        "UTC",
        datetime(2026, 10, 31, tzinfo=UTC),
        datetime(2026, 11, 30, tzinfo=UTC),
    )
    assert [f.day for f in both_restricted] == [1, 2, 9, 16, 23, 30]
