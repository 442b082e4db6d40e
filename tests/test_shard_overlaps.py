"""Overlapping shards noticed: a resource another shard acted on and also selects is a Conflict
here, not reconciled by two writers (operator/overlaps.py).

The rule is pure (`overlapping`) and tested with examples and properties; the history's
query (`acted_since`) on SQLite; the whole of it through `run --once` of two shards on one
directory and one database, and through the loop with an injected clock for the window's end.
"""

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws

from homeostat.desired_state.selector import EVERYTHING, Selector, parse_selector
from homeostat.operator.history import HistoryStore
from homeostat.operator.loop import Loop
from homeostat.operator.overlaps import ShardActed, changes, message, overlapping
from homeostat.operator.records import ActionRecord
from homeostat.operator.requests import PassReason, PassRequest
from homeostat.operator.statuses import State
from homeostat.operator.wiring import build_runtime
from homeostat.reconcilers.actions import Outcome

from .conftest import run_main
from .test_history import record
from .test_shards import counts, daemon_settings, desired, seed, service

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
PROD = Selector((("env", "prod"),))


def acted(name: str, shard: str, minutes: int = 0) -> ShardActed:
    return ShardActed("ECSService", name, shard, NOW + timedelta(minutes=minutes))


def row(
    name: str, action: str = "update_service", *, dry_run: bool = False, time: datetime = NOW
) -> ActionRecord:
    """test_history's record of `name`, as `action`, at `time`, a dry run or applied."""
    return replace(
        record(name, outcome=Outcome.DRY_RUN if dry_run else Outcome.APPLIED), action=action, time=time
    )


# --- the rule -------------------------------------------------------------------------------


def test_a_resource_another_shard_acted_on_and_selects_is_overlapped() -> None:
    state = desired(
        service("api", 3, "{team: a, env: prod}"), service("web", 3, "{team: b, env: prod}"), service("db", 3)
    )
    rows = [
        acted("api", "team=a", 1),
        acted("web", "team=a", 2),  # team=a acted on web while it was labelled a: not any more
        acted("api", "", 3),  # the daemon without a selector, which never leads beside a shard
        acted("web", "env=prod", 4),  # this shard's own row
        acted("db", "team=a", 5),  # db is not in this shard
    ]
    mine = [r for r in state.resources if PROD.matches(r.manifest.metadata.labels)]
    assert overlapping(PROD, mine, rows) == {("ECSService", "api"): acted("api", "team=a", 1)}
    assert overlapping(EVERYTHING, state.resources, rows) == {}, "no selector: the lease guards it"


def test_the_newest_action_of_the_shards_that_select_it_is_reported() -> None:
    (api,) = desired(service("api", 3, "{team: a, env: prod, tier: web}")).resources
    rows = [acted("api", "team=a", 1), acted("api", "tier=web", 7), acted("api", "tier=db", 9)]
    assert overlapping(PROD, [api], rows) == {("ECSService", "api"): acted("api", "tier=web", 7)}
    assert overlapping(PROD, [api], [acted("api", "not a selector")]) == {}


def test_the_message_names_the_shard_the_instant_and_the_end() -> None:
    text = message(acted("api", "team=a"), timedelta(hours=1))
    assert text.startswith("Conflict: shard 'team=a' acted on it at 2026-12-01T12:00:00Z")
    assert "shards must not overlap" in text
    assert text.endswith("not reconciled here until 1h after that shard's last action on it")


def test_changes_are_the_overlaps_that_start_and_end() -> None:
    key = ("ECSService", "api")
    before = {key: acted("api", "team=a")}
    after = {key: acted("api", "tier=web"), ("ECSService", "web"): acted("web", "team=b")}
    assert changes(before, after) == (
        [(key, "tier=web"), (("ECSService", "web"), "team=b")],
        [(key, "team=a")],
    )
    assert changes(after, after) == ([], [])


LABELS = st.dictionaries(st.sampled_from("abc"), st.sampled_from("xy"), max_size=3)
SHARDS = st.dictionaries(st.sampled_from("abc"), st.sampled_from("xy"), min_size=1, max_size=2).map(
    lambda pairs: Selector(tuple(sorted(pairs.items()))).text
)


@given(
    labels=st.lists(LABELS, min_size=1, max_size=4),
    rows=st.lists(st.tuples(st.integers(0, 3), SHARDS | st.just(""), st.integers(0, 60)), max_size=12),
    mine=SHARDS,
)
def test_every_overlap_reported_is_real_and_the_newest(
    labels: list[dict[str, str]], rows: list[tuple[int, str, int]], mine: str
) -> None:
    """Whatever the labels, shards and rows: a reported overlap is another shard (not this one,
    not "") whose selector matches the resource, at that shard's newest row, no matching row is
    newer, and every resource with a matching row of another shard is reported."""
    selector = parse_selector(mine)
    resources = desired(*(service(f"s{i}", 1, json.dumps(ls)) for i, ls in enumerate(labels))).resources
    history = [acted(f"s{i}", shard, minute) for i, shard, minute in rows if i < len(labels)]
    found = overlapping(selector, resources, history)
    for resource in resources:
        matching = [
            r
            for r in history
            if r.name == resource.name
            and r.shard not in ("", mine)
            and parse_selector(r.shard).matches(resource.manifest.metadata.labels)
        ]
        reported = found.get(("ECSService", resource.name))
        assert (reported is not None) == bool(matching)
        if reported is not None:
            assert reported in matching
            assert all(r.at <= reported.at for r in matching)


# --- the history ----------------------------------------------------------------------------


def acted_since_answers(url: str) -> None:
    """Rows of four writers on the database at `url` (empty): env=prod's `acted_since` answers
    each other shard's newest acting row per resource in the window, and nothing of its own,
    of the daemon without a selector, dry runs or `unmanage`. Shared with the PostgreSQL suite."""
    for shard, records in {
        "team=a": [row("api", time=NOW - timedelta(minutes=5)), row("api", time=NOW - timedelta(minutes=2))],
        "team=b": [
            row("web", dry_run=True),
            row("web", "unmanage"),
            row("db", time=NOW - timedelta(hours=2)),
        ],
        "": [row("api")],
        "env=prod": [row("api")],
    }.items():
        store = HistoryStore(url, shard)
        store.add(records)
        store.close()
    store = HistoryStore(url, "env=prod")
    try:
        assert store.acted_since(NOW - timedelta(hours=1)) == [
            ShardActed("ECSService", "api", "team=a", NOW - timedelta(minutes=2))
        ]
        assert {(r.name, r.shard) for r in store.acted_since(NOW - timedelta(hours=3))} == {
            ("api", "team=a"),
            ("db", "team=b"),
        }
    finally:
        store.close()


def test_the_history_answers_each_other_shards_newest_acting_row(tmp_path: Path) -> None:
    acted_since_answers(f"sqlite:///{tmp_path / 'h.db'}")


# --- end to end -----------------------------------------------------------------------------


def test_two_overlapping_shards_settle_on_one_writer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Shard team=a fixes api; shard env=prod, which selects api too, leaves api alone as a
    Conflict (exit 1, `shard_overlap` logged, its table naming team=a) and fixes web, which
    only it selects; team=a, which never saw env=prod act on api, goes on fixing api."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "api.yaml").write_text(service("api", 3, "{team: a, env: prod}"))
    (state / "web.yaml").write_text(service("web", 4, "{team: b, env: prod}"))
    url = f"sqlite:///{tmp_path / 'h.db'}"
    once = ["run", "--once", "--desired-state", str(state), "--history", url, "--log-format", "json"]
    with mock_aws():
        ecs = seed({"api": 1, "web": 1})
        assert run_main(capsys, *once, "--selector", "team=a").returncode == 0
        assert counts(ecs, "api", "web") == {"api": 3, "web": 1}
        (state / "api.yaml").write_text(service("api", 5, "{team: a, env: prod}"))
        prod = run_main(capsys, *once, "--selector", "env=prod")
        assert prod.returncode == 1
        assert counts(ecs, "api", "web") == {"api": 3, "web": 4}, "env=prod did not touch api"
        (line,) = [line for line in prod.stdout.splitlines() if " api " in line]
        assert "Conflict" in line
        assert "shard 'team=a' acted on it" in line
        events = [json.loads(line) for line in prod.stderr.splitlines() if line.startswith("{")]
        overlaps = [e for e in events if e["event"] == "shard_overlap"]
        assert [(e["name"], e["selector"], e["other"]) for e in overlaps] == [("api", "env=prod", "team=a")]
        assert run_main(capsys, *once, "--selector", "team=a").returncode == 0
        assert counts(ecs, "api") == {"api": 5}


def test_an_overlap_ends_a_fight_window_after_the_other_shards_last_action(tmp_path: Path) -> None:
    """Through the loop, on an injected clock: team=a's row makes api a Conflict of env=prod for
    the fight window (1h); past it, env=prod reconciles api and logs the overlap's end."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "api.yaml").write_text(service("api", 3, "{team: a, env: prod}"))
    url = f"sqlite:///{tmp_path / 'h.db'}"
    other = HistoryStore(url, "team=a")
    other.add([row("api")])
    other.close()
    clock = [NOW + timedelta(minutes=59)]
    with mock_aws(), structlog.testing.capture_logs() as logs:
        ecs = seed({"api": 1})
        runtime = build_runtime(daemon_settings(state, url, PROD), clock=lambda: clock[0])
        try:
            loop = Loop(runtime)
            report = loop.run_one_pass([PassRequest(PassReason.ONCE)])
            assert report is not None
            (status,) = report.statuses
            assert status.state == State.CONFLICT
            assert counts(ecs, "api") == {"api": 1}
            clock[0] = NOW + timedelta(minutes=61)
            report = loop.run_one_pass([PassRequest(PassReason.ONCE)])
            assert report is not None
            assert [s.state for s in report.statuses] != [State.CONFLICT]
            assert counts(ecs, "api") == {"api": 3}
        finally:
            runtime.close()
    seen = [(e["event"], e.get("other")) for e in logs if str(e["event"]).startswith("shard_overlap")]
    assert seen == [("shard_overlap", "team=a"), ("shard_overlap_ended", "team=a")]
