"""Specification of the effective alarm state: the contract's four rules, in order, and attribution.

`effective_state` is pure: given the observed alarm names, the windows active
now, the AlarmActions resources and all windows, it says for every selected
alarm the desired actionsEnabled and the ONE resource responsible for it.
"""

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from homeostat.desired_state.identifiers import AlarmName, Kind
from homeostat.desired_state.loading import load_directory
from homeostat.desired_state.models import AlarmSelector
from homeostat.desired_state.state import InvalidDesiredState, Resource, Source
from homeostat.reconcilers.alarm_actions import AlarmActions, policy_of
from homeostat.reconcilers.alarm_state import (
    AlarmChange,
    AlarmRules,
    Decision,
    Rule,
    active_window_names,
    managed_counts,
)
from homeostat.reconcilers.alarm_state import effective_state as resolve
from homeostat.reconcilers.maintenance_window import MaintenanceWindow, window_of
from homeostat.reconcilers.registry import kind_table


def selector(spec: str | list[str]) -> dict[str, Any]:
    return {"alarmNamePrefix": spec} if isinstance(spec, str) else {"alarmNames": spec}


def alarm_actions(name: str, select: str | list[str], enabled: bool, **extra: Any) -> AlarmActions:
    return AlarmActions.model_validate(
        {
            "apiVersion": "homeostat/v1",
            "kind": "AlarmActions",
            "metadata": {"name": name},
            "spec": {**selector(select), "actionsEnabled": enabled, **extra},
        }
    )


def window(name: str, *selects: str | list[str], start: str = "2027-03-07T02:00:00Z") -> MaintenanceWindow:
    begin = datetime.fromisoformat(start)
    return MaintenanceWindow.model_validate(
        {
            "apiVersion": "homeostat/v1",
            "kind": "MaintenanceWindow",
            "metadata": {"name": name},
            "spec": {
                "start": begin.isoformat(),
                "end": (begin + timedelta(hours=4)).isoformat(),
                "silenceAlarms": [selector(s) for s in selects],
            },
        }
    )


def rules(actions: list[AlarmActions], windows: list[MaintenanceWindow]) -> AlarmRules:
    """The contributions of these manifests, as the alarm reconciler gathers them (`suspend` is a
    plain boolean here, so the instant they are taken at does not matter)."""
    at = datetime(2027, 1, 1, tzinfo=UTC)
    return AlarmRules(
        tuple(policy_of(Resource(a, Source("a.yaml", 1)), at) for a in actions),
        tuple(window_of(Resource(w, Source("w.yaml", 1)), at) for w in windows),
    )


def effective_state(
    alarms: list[str],
    active: set[str] | frozenset[str],
    actions: list[AlarmActions],
    windows: list[MaintenanceWindow],
) -> dict[AlarmName, Decision]:
    found = rules(actions, windows)
    return resolve(alarms, active, found.policies, found.windows)


def changes_of(
    found: AlarmRules,
    kind: Kind,
    resource: str,
    decided: dict[AlarmName, Decision],
    live: dict[str, bool],
    now: datetime,
    since: datetime | None = None,
) -> list[AlarmChange]:
    """The changes of the alarms one resource decides (`since`: when a pass last saw each as decided)."""
    settled = {} if since is None else dict.fromkeys(decided, since)
    return [
        c
        for c in found.changes(decided, live, now, settled)
        if (c.decision.kind, c.decision.resource) == (kind, resource)
    ]


# --- the four rules, one example each ---------------------------------------------------------

PROD_ON = alarm_actions("prod", "prod-", True)
SUNDAY = window("sunday", "prod-")
DB_ONLY = window("db-maintenance", ["db-cpu"])


def test_rule_1_an_active_window_silences_even_an_alarm_an_alarm_actions_enables() -> None:
    """While a window silencing an alarm is active, its actions are off and the window decides."""
    decided = effective_state(["prod-cpu"], {"sunday"}, [PROD_ON], [SUNDAY])
    assert decided["prod-cpu"] == Decision(
        "prod-cpu", False, Kind("MaintenanceWindow"), "sunday", Rule.WINDOW_SILENCES
    )


def test_rule_2_outside_windows_the_alarm_actions_value_holds() -> None:
    """With no active window silencing it, an AlarmActions resource decides its alarms."""
    decided = effective_state(["prod-cpu"], set(), [PROD_ON], [SUNDAY])
    assert decided["prod-cpu"] == Decision("prod-cpu", True, Kind("AlarmActions"), "prod", Rule.ALARM_ACTIONS)


def test_rule_2_can_keep_an_alarm_off_after_a_window() -> None:
    """An AlarmActions with actionsEnabled false keeps the alarm off when the window ends."""
    off = alarm_actions("muted", ["prod-noisy"], False)
    decided = effective_state(["prod-noisy"], set(), [off], [SUNDAY])
    assert decided["prod-noisy"].actions_enabled is False
    assert decided["prod-noisy"].resource == "muted"


def test_rule_3_an_alarm_only_windows_select_is_re_enabled_by_the_window() -> None:
    """An alarm no AlarmActions selects is turned back on by the window once it is inactive."""
    decided = effective_state(["db-cpu"], set(), [PROD_ON], [SUNDAY, DB_ONLY])
    assert decided["db-cpu"] == Decision(
        "db-cpu", True, Kind("MaintenanceWindow"), "db-maintenance", Rule.WINDOW_REENABLES
    )


def test_rule_4_alarms_nothing_selects_are_not_managed() -> None:
    """An alarm selected by no resource has no decision: it is never touched."""
    assert effective_state(["staging-cpu"], {"sunday"}, [PROD_ON], [SUNDAY, DB_ONLY]) == {}


def test_ties_go_to_the_first_resource_by_name() -> None:
    """Two active windows silencing the same alarm: the first by name is responsible."""
    later = window("zz-window", "prod-")
    earlier = window("aa-window", ["prod-cpu"])
    decided = effective_state(["prod-cpu"], {"zz-window", "aa-window"}, [], [later, earlier])
    assert decided["prod-cpu"].resource == "aa-window"


def test_active_window_names_uses_the_window_timing() -> None:
    """Which windows are active follows their schedule at the given instant."""
    inside = datetime(2027, 3, 7, 3, tzinfo=UTC)
    after = datetime(2027, 3, 7, 6, tzinfo=UTC)
    windows = rules([], [SUNDAY]).windows
    assert active_window_names(windows, inside) == {"sunday"}
    assert active_window_names(windows, after) == frozenset()


# --- reasons and counts --------------------------------------------------------------------------

SUNDAY_END = datetime(2027, 3, 7, 6, tzinfo=UTC)


def test_silencing_says_the_window_started() -> None:
    """Disabling an alarm because an active window silences it: `maintenance window <name> started`."""
    found = rules([PROD_ON], [SUNDAY])
    now = datetime(2027, 3, 7, 3, tzinfo=UTC)
    decided = found.decide(["prod-a"], now)
    [change] = changes_of(found, Kind("MaintenanceWindow"), "sunday", decided, {"prod-a": True}, now)
    assert (change.decision.alarm, change.action, change.reason) == (
        "prod-a",
        "disable_alarm_actions",
        "maintenance window sunday started",
    )


@pytest.mark.parametrize("responsible", ["alarm-actions", "window-only"])
def test_re_enabling_after_a_window_ended_says_the_window_ended(responsible: str) -> None:
    """The first pass after the end enabling an alarm the window had silenced names the window."""
    actions = [PROD_ON] if responsible == "alarm-actions" else []
    resource = ("prod", Kind("AlarmActions")) if actions else ("sunday", Kind("MaintenanceWindow"))
    now = SUNDAY_END + timedelta(seconds=1)
    found = rules(actions, [SUNDAY])
    decided = found.decide(["prod-a"], now)
    since = SUNDAY_END - timedelta(minutes=5)  # the previous pass saw the window active
    [change] = changes_of(found, resource[1], resource[0], decided, {"prod-a": False}, now, since)
    assert (change.action, change.reason) == ("enable_alarm_actions", "maintenance window sunday ended")


def test_an_alarm_disabled_after_a_pass_saw_the_window_end_is_restored_as_drift() -> None:
    """Disabled after a pass following the end already saw it: the end did not change it, drift."""
    now = SUNDAY_END + timedelta(minutes=30)
    found = rules([PROD_ON], [SUNDAY])
    decided = found.decide(["prod-a"], now)
    since = SUNDAY_END  # the pass at the window's end
    [change] = changes_of(found, Kind("AlarmActions"), "prod", decided, {"prod-a": False}, now, since)
    assert (change.action, change.reason) == ("enable_alarm_actions", "drift")


def test_the_ended_window_named_is_the_one_whose_end_changed_the_alarm() -> None:
    """Two windows silence an alarm; the first ends while the second holds it off: its re-enable
    names the second window, whose end is what turned it back on."""
    early = window("a-early", "prod-")  # 02:00-06:00
    late = window("b-late", "prod-", start="2027-03-07T04:00:00Z")  # 04:00-08:00
    found = rules([PROD_ON], [early, late])
    now = datetime(2027, 3, 7, 8, 0, 1, tzinfo=UTC)
    decided = found.decide(["prod-a"], now)
    [change] = changes_of(found, Kind("AlarmActions"), "prod", decided, {"prod-a": False}, now)
    assert change.reason == "maintenance window b-late ended"


def test_re_enabling_an_alarm_no_window_silenced_at_its_end_is_drift() -> None:
    """A window that selects the alarm but was not what held it off at its end is not the reason."""
    db_window = window("db-maintenance", ["db-cpu"])  # ends 06:00, but never selected prod-a
    found = rules([PROD_ON], [db_window])
    now = SUNDAY_END + timedelta(seconds=1)
    decided = found.decide(["prod-a"], now)
    [change] = changes_of(found, Kind("AlarmActions"), "prod", decided, {"prod-a": False}, now)
    assert change.reason == "drift"


def test_disabling_by_an_alarm_actions_is_drift() -> None:
    """An alarm an AlarmActions wants off, found on, is turned off as drift."""
    off = alarm_actions("muted", "prod-", False)
    found = rules([off], [SUNDAY])
    now = SUNDAY_END + timedelta(seconds=1)
    decided = found.decide(["prod-a"], now)
    [change] = changes_of(found, Kind("AlarmActions"), "muted", decided, {"prod-a": True}, now)
    assert (change.action, change.reason) == ("disable_alarm_actions", "drift")


def test_alarms_already_in_their_effective_state_need_no_change() -> None:
    """A resource whose alarms match their effective state has no changes."""
    found = rules([PROD_ON], [SUNDAY])
    now = datetime(2027, 3, 8, tzinfo=UTC)
    decided = found.decide(["prod-a"], now)
    assert changes_of(found, Kind("AlarmActions"), "prod", decided, {"prod-a": True}, now) == []


def test_a_suspended_resource_decides_only_alarms_no_live_resource_decides() -> None:
    """A suspended AlarmActions freezes the alarms nobody live selects; it is neither counted nor listed."""
    frozen = alarm_actions("frozen", ["ops-a"], False, suspend=True)
    found = rules([frozen, PROD_ON], [SUNDAY])
    assert found.suspended == {(Kind("AlarmActions"), "frozen")}
    decided = found.decide(["ops-a", "prod-b"], datetime(2027, 3, 8, tzinfo=UTC))
    assert decided["ops-a"].resource == "frozen"
    assert managed_counts(decided, found.suspended) == {"enabled": 1, "disabled": 0}
    assert [s.alarmNames or s.alarmNamePrefix for s in found.selectors()] == ["prod-", "prod-"]


@pytest.mark.parametrize("flag", ["suspend", "dryRun"])
def test_a_live_window_reenables_after_maintenance_what_a_suspended_or_dry_run_alarm_actions_selects(
    flag: str,
) -> None:
    """After the window, its alarms come back on even when their AlarmActions is suspended or dry-run."""
    paused = alarm_actions("prod", "prod-", True, **{flag: True})
    during = effective_state(["prod-a"], {"sunday"}, [paused], [SUNDAY])
    after = effective_state(["prod-a"], set(), [paused], [SUNDAY])
    assert (during["prod-a"].actions_enabled, during["prod-a"].resource) == (False, "sunday")
    assert (after["prod-a"].actions_enabled, after["prod-a"].kind) == (True, Kind("MaintenanceWindow"))


def test_a_suspended_active_window_does_not_shadow_a_live_one() -> None:
    """Two active windows select an alarm: the live one silences it, whatever the names' order."""
    frozen = window("a-frozen", "prod-").model_copy(deep=True)
    frozen = MaintenanceWindow.model_validate(
        {
            **frozen.model_dump(mode="json"),
            "spec": {**frozen.spec.model_dump(mode="json", exclude_none=True), "suspend": True},
        }
    )
    live = window("b-live", "prod-")
    decided = effective_state(["prod-a"], {"a-frozen", "b-live"}, [], [frozen, live])
    assert (decided["prod-a"].actions_enabled, decided["prod-a"].resource) == (False, "b-live")


# --- properties ------------------------------------------------------------------------------------

names = st.text(alphabet="abc", min_size=1, max_size=4)
selectors = st.one_of(
    names.map(lambda p: p),
    st.lists(names, min_size=1, max_size=3, unique=True),
)


def _as_selector(spec: str | list[str]) -> AlarmSelector:
    return AlarmSelector.model_validate(selector(spec))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[str], set[str], list[AlarmActions], list[MaintenanceWindow]]:
    alarms = draw(st.lists(names, max_size=12, unique=True))
    windows = [
        window(f"w{i}", *draw(st.lists(selectors, min_size=1, max_size=2)))
        for i in range(draw(st.integers(0, 3)))
    ]
    active = {w.metadata.name for w in windows if draw(st.booleans())}
    actions = [
        alarm_actions(f"a{i}", draw(selectors), draw(st.booleans())) for i in range(draw(st.integers(0, 3)))
    ]
    return alarms, active, actions, windows


@given(scenarios())
def test_effective_state_follows_the_four_rules_in_order(
    scenario: tuple[list[str], set[str], list[AlarmActions], list[MaintenanceWindow]],
) -> None:
    """Each alarm's value and responsible resource are exactly what rules 1-4 say, in order."""
    alarms, active, actions, windows = scenario
    decided = effective_state(alarms, active, actions, windows)
    for alarm in alarms:
        silencers = sorted(
            w.metadata.name
            for w in windows
            if w.metadata.name in active and any(s.selects(alarm) for s in w.spec.silenceAlarms)
        )
        selecting_actions = sorted(
            (a.metadata.name, a.spec.actionsEnabled) for a in actions if a.spec.selects(alarm)
        )
        selecting_windows = sorted(
            w.metadata.name for w in windows if any(s.selects(alarm) for s in w.spec.silenceAlarms)
        )
        if silencers:
            expected = Decision(alarm, False, Kind("MaintenanceWindow"), silencers[0], Rule.WINDOW_SILENCES)
        elif selecting_actions:
            name, enabled = selecting_actions[0]
            expected = Decision(alarm, enabled, Kind("AlarmActions"), name, Rule.ALARM_ACTIONS)
        elif selecting_windows:
            expected = Decision(
                alarm, True, Kind("MaintenanceWindow"), selecting_windows[0], Rule.WINDOW_REENABLES
            )
        else:
            assert alarm not in decided
            continue
        assert decided[alarm] == expected
    assert set(decided) <= set(alarms)


@given(scenarios())
def test_each_alarm_is_decided_alone_and_by_a_resource_that_selects_it(
    scenario: tuple[list[str], set[str], list[AlarmActions], list[MaintenanceWindow]],
) -> None:
    """An alarm's decision ignores the other alarms, and its resource really selects it."""
    alarms, active, actions, windows = scenario
    decided = effective_state(alarms, active, actions, windows)
    selectors_of: dict[tuple[Kind, str], list[AlarmSelector]] = {
        (Kind("AlarmActions"), a.metadata.name): [a.spec] for a in actions
    }
    selectors_of.update(
        {(Kind("MaintenanceWindow"), w.metadata.name): list(w.spec.silenceAlarms) for w in windows}
    )
    for alarm, decision in decided.items():
        assert effective_state([alarm], active, actions, windows) == {alarm: decision}
        assert any(s.selects(alarm) for s in selectors_of[(decision.kind, decision.resource)])


@given(scenarios())
def test_activating_more_windows_never_enables_an_alarm(
    scenario: tuple[list[str], set[str], list[AlarmActions], list[MaintenanceWindow]],
) -> None:
    """Turning every window on can only silence alarms, never turn one on."""
    alarms, active, actions, windows = scenario
    before = effective_state(alarms, active, actions, windows)
    after = effective_state(alarms, {w.metadata.name for w in windows}, actions, windows)
    assert set(before) == set(after)
    for alarm, decision in after.items():
        assert decision.actions_enabled <= before[alarm].actions_enabled


# --- validation: conflicting AlarmActions ------------------------------------------------------


def test_conflicting_alarm_actions_in_two_files_name_both_files(tmp_path: Path) -> None:
    """Two AlarmActions selecting the same alarms with different values: one error naming both files."""
    doc = """\
        apiVersion: homeostat/v1
        kind: AlarmActions
        metadata:
          name: {name}
        spec:
          {select}
          actionsEnabled: {enabled}
        """
    (tmp_path / "on.yaml").write_text(
        textwrap.dedent(doc.format(name="loud", select="alarmNamePrefix: prod-", enabled="true"))
    )
    (tmp_path / "off.yaml").write_text(
        textwrap.dedent(doc.format(name="muted", select="alarmNames: [prod-cpu]", enabled="false"))
    )
    with pytest.raises(InvalidDesiredState) as info:
        load_directory(tmp_path, kinds=kind_table())
    [error] = info.value.errors
    assert "off.yaml" in str(error)
    assert "on.yaml" in str(error)
