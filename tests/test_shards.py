"""Shards (`--selector`), in process: parsing, matching, the shard of a desired state and its
bonds, one lease, journal and last-known-good slot per shard on one SQLite database, and the
commands (`plan`, `run --once`, `history`) restricted to a shard.

Specification: contract section 3 (`--selector key=value,...` reconciles only the resources
whose labels match; several daemons share one directory and one history database, each with
its own lease) and section 4 (high availability per shard); issue 15 item 5.
"""

import io
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import sqlalchemy as sa
import structlog
from alembic import command
from alembic.config import Config
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws
from rich.console import Console

from homeostat.desired_state.identifiers import Kind, Revision
from homeostat.desired_state.loading import load_files
from homeostat.desired_state.selector import EVERYTHING, MAX_SELECTOR_CHARACTERS, Selector, parse_selector
from homeostat.desired_state.shards import select
from homeostat.desired_state.state import DesiredState, InvalidDesiredState, Resource, Source
from homeostat.operator import reload
from homeostat.operator.console import print_status
from homeostat.operator.execution import mark_interrupted
from homeostat.operator.history import MIGRATIONS, HistoryQuery, HistoryStore
from homeostat.operator.last_good import SLOT_ID, LastKnownGood, slot_id
from homeostat.operator.lease import ADVISORY_KEY, Lease, LeaseHeld, advisory_key
from homeostat.operator.loop import Loop
from homeostat.operator.options import Settings
from homeostat.operator.page import render_page
from homeostat.operator.records import ActionRecord
from homeostat.operator.status import LoopStatus
from homeostat.operator.wiring import build_runtime
from homeostat.reconcilers.actions import Outcome
from homeostat.reconcilers.ecs_service import ECSService
from homeostat.reconcilers.registry import kind_table, shard_bonds

from .conftest import REGION, run_main

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
TEAM_A = Selector((("team", "a"),))
TEAM_B = Selector((("team", "b"),))


def service(name: str, count: int, labels: str = "{}", extra: str = "") -> str:
    return (
        f"apiVersion: homeostat/v1\nkind: ECSService\nmetadata: {{name: {name}, labels: {labels}}}\n"
        f"spec: {{cluster: prod, service: {name}, desiredCount: {count}{extra}}}\n"
    )


def task_definition(name: str, labels: str) -> str:
    return (
        f"apiVersion: homeostat/v1\nkind: ECSTaskDefinition\nmetadata: {{name: {name}, labels: {labels}}}\n"
        f"spec:\n  family: {name}\n  definition:\n    containerDefinitions:\n"
        f"      - {{name: {name}, image: x, memory: 64}}\n"
    )


def alarms(name: str, labels: str, selector: str, enabled: bool = True) -> str:
    return (
        f"apiVersion: homeostat/v1\nkind: AlarmActions\nmetadata: {{name: {name}, labels: {labels}}}\n"
        f"spec: {{{selector}, actionsEnabled: {str(enabled).lower()}}}\n"
    )


def window(name: str, labels: str, selector: str) -> str:
    return (
        f"apiVersion: homeostat/v1\nkind: MaintenanceWindow\nmetadata: {{name: {name}, labels: {labels}}}\n"
        f'spec: {{schedule: "0 2 * * SUN", duration: 4h, silenceAlarms: [{{{selector}}}]}}\n'
    )


def desired(*documents: str) -> DesiredState:
    files = {Path(f"m{i}.yaml"): text.encode() for i, text in enumerate(documents)}
    return load_files(files, Path("/state"), Revision("r1"), kinds=kind_table())


def names(state: DesiredState) -> list[str]:
    return [r.name for r in state.resources]


def shard_errors(state: DesiredState, selector: Selector) -> list[str]:
    with pytest.raises(InvalidDesiredState) as caught:
        select(state, selector, shard_bonds())
    return [str(e) for e in caught.value.errors]


# --- parsing and matching -----------------------------------------------------------------------


def test_a_selector_is_canonical_whatever_its_spelling() -> None:
    """Pairs sorted by key, spaces around items ignored, an empty value allowed: one shard, one text."""
    spelled = parse_selector(" team = a ,env=prod,tier=")
    assert spelled == parse_selector("tier=,env=prod,team=a")
    assert spelled.text == "env=prod,team=a,tier="
    assert spelled.digest == parse_selector("team=a,tier=,env=prod").digest
    assert spelled.digest != parse_selector("env=prod,team=a").digest
    assert parse_selector("") == parse_selector("  ") == EVERYTHING
    assert EVERYTHING.text == ""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("team", "expected key=value, got 'team'"),
        ("team=a,,env=b", "expected key=value, got ''"),
        ("=a", "empty label key in '=a'"),
        ("team=a, team=b", "label key 'team' given twice"),
        ("k=" + "v" * MAX_SELECTOR_CHARACTERS, f"at most {MAX_SELECTOR_CHARACTERS} characters"),
    ],
)
def test_a_bad_selector_is_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        parse_selector(text)


def test_a_bad_selector_on_the_command_line_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = run_main(capsys, "plan", "--selector", "team=a,team=b")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "homeostat: error: --selector: label key 'team' given twice (expected key=value,...)"
    ]


# The labels a selector can name: no `,` (the item separator), no `=` (keys), no whitespace
# (stripped around items, as `team=a, env=b` is typed); a label outside this is not selectable.
LABEL_TEXT = st.text(
    st.characters(blacklist_characters=",=", blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), max_size=8
)
LABELS = st.dictionaries(LABEL_TEXT.filter(bool), LABEL_TEXT, max_size=5)


def labelled(name: str, labels: dict[str, str]) -> Resource[Any]:
    manifest = ECSService.model_validate(
        {
            "apiVersion": "homeostat/v1",
            "kind": "ECSService",
            "metadata": {"name": name, "labels": labels},
            "spec": {"cluster": "prod", "service": name, "desiredCount": 1},
        }
    )
    return Resource(manifest, Source(f"{name}.yaml", 1))


@given(labels=LABELS, others=st.lists(LABELS, max_size=3), data=st.data())
def test_selecting_by_a_resources_own_labels_always_selects_it(
    labels: dict[str, str], others: list[dict[str, str]], data: Any
) -> None:
    """Any subset of a resource's own labels, as a selector's text, selects it (and exactly the
    resources whose labels hold that subset); one more pair it does not carry does not; the
    empty selector selects everything."""
    keys = data.draw(st.lists(st.sampled_from(sorted(labels)), unique=True) if labels else st.just([]))
    text = ",".join(f"{key}={labels[key]}" for key in keys)
    mine = labelled("mine", labels)
    rest = [labelled(f"other-{i}", other) for i, other in enumerate(others)]
    state = DesiredState(Revision("r"), Path("/state"), (mine, *rest))
    shard = select(state, parse_selector(text))
    assert mine in shard.resources
    assert [r.name for r in shard.resources] == [
        r.name for r in state.resources if all(r.manifest.metadata.labels.get(k) == labels[k] for k in keys)
    ]
    assert select(state, EVERYTHING).resources == state.resources
    stranger = data.draw(LABEL_TEXT.filter(lambda k: bool(k) and k not in labels))
    assert not parse_selector(",".join(filter(None, [text, f"{stranger}=x"]))).matches(labels)
    if keys:
        assert not parse_selector(f"{keys[0]}={labels[keys[0]]}-other").matches(labels)


# --- the shard of a desired state ---------------------------------------------------------------


def test_the_shard_holds_exactly_the_matching_resources_of_the_same_revision() -> None:
    state = desired(
        service("api", 2, "{team: a}"),
        service("web", 1, "{team: b}"),
        service("worker", 1, "{team: a, tier: batch}"),
        service("cron", 1),
    )
    shard = select(state, TEAM_A, shard_bonds())
    assert names(shard) == ["api", "worker"]
    assert (shard.revision, shard.directory) == (state.revision, state.directory)
    assert names(select(state, parse_selector("team=a,tier=batch"), shard_bonds())) == ["worker"]
    assert names(select(state, parse_selector("team=c"), shard_bonds())) == []
    assert select(state, EVERYTHING, shard_bonds()) is state


def test_a_service_and_the_task_definition_it_runs_must_share_a_shard() -> None:
    """Cut, the revision is invalid for both shards, each error at the resource inside it."""
    state = desired(
        task_definition("api", "{team: a}"),
        service("api", 2, "{team: b}", ", taskDefinitionFrom: api").replace("desiredCount: 2, ", ""),
    )
    (for_b,) = shard_errors(state, TEAM_B)
    assert for_b == (
        "m1.yaml:1: metadata.labels: ECSService 'api' is in shard 'team=b' but ECSTaskDefinition 'api' "
        "(m0.yaml:1) is not, and the service runs it (taskDefinitionFrom): label both for one shard"
    )
    (for_a,) = shard_errors(state, TEAM_A)
    assert for_a.startswith("m0.yaml:1: metadata.labels: ECSTaskDefinition 'api' is in shard 'team=a'")
    together = desired(
        task_definition("api", "{team: a}"),
        service("api", 2, "{team: a}", ", taskDefinitionFrom: api").replace("desiredCount: 2, ", ""),
    )
    assert names(select(together, TEAM_A, shard_bonds())) == ["api", "api"]


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("alarmNamePrefix: prod", "alarmNamePrefix: prod-api"),
        ("alarmNamePrefix: prod-api", "alarmNamePrefix: prod"),
        ("alarmNamePrefix: prod", "alarmNames: [prod-cpu]"),
        ("alarmNames: [prod-cpu, x]", "alarmNamePrefix: prod-c"),
        ("alarmNames: [a, prod-cpu]", "alarmNames: [prod-cpu]"),
    ],
)
def test_alarm_rules_that_can_select_one_alarm_must_share_a_shard(left: str, right: str) -> None:
    """A window in one shard and a policy (or another window) in another that can select the
    same alarm would fight over it: the revision is refused for both shards."""
    for other in (alarms("policy", "{team: b}", right), window("other", "{team: b}", right)):
        state = desired(window("sunday", "{team: a}", left), other)
        (error,) = shard_errors(state, TEAM_A)
        assert "MaintenanceWindow 'sunday' is in shard 'team=a' but" in error
        assert "both can select the same alarms: label both for one shard" in error
        assert len(shard_errors(state, TEAM_B)) == 1


def test_alarm_rules_that_cannot_select_one_alarm_may_be_in_different_shards() -> None:
    state = desired(
        window("sunday", "{team: a}", "alarmNamePrefix: prod-a"),
        alarms("policy-b", "{team: b}", "alarmNamePrefix: prod-b"),
        alarms("names-b", "{team: b}", "alarmNames: [prod-x, prod]"),
        alarms("policy-a", "{team: a}", "alarmNames: [prod-a-cpu]", enabled=False),
    )
    assert names(select(state, TEAM_A, shard_bonds())) == ["sunday", "policy-a"]
    assert names(select(state, TEAM_B, shard_bonds())) == ["policy-b", "names-b"]


def test_alarm_rules_of_different_regions_may_be_in_different_shards() -> None:
    """Alarm names are per region: a window of eu-west-1 and a policy of us-east-1 on the same
    prefix are split freely; one without a region may be in either, so it binds to both."""
    state = desired(
        window("sunday", "{team: a}", "alarmNamePrefix: prod").replace(
            "spec: {", "spec: {region: eu-west-1, "
        ),
        alarms("policy", "{team: b}", "region: us-east-1, alarmNamePrefix: prod"),
    )
    assert names(select(state, TEAM_A, shard_bonds())) == ["sunday"]
    unplaced = desired(
        window("sunday", "{team: a}", "alarmNamePrefix: prod").replace(
            "spec: {", "spec: {region: eu-west-1, "
        ),
        alarms("policy", "{team: b}", "alarmNamePrefix: prod"),
    )
    (error,) = shard_errors(unplaced, TEAM_B)
    assert "AlarmActions 'policy' is in shard 'team=b' but MaintenanceWindow 'sunday'" in error


# --- one lease per shard on one SQLite database -------------------------------------------------


def test_each_shard_has_its_own_lease_and_a_daemon_of_everything_excludes_them(tmp_path: Path) -> None:
    store = HistoryStore(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        a, a2, b, whole = (Lease(store.engine, s) for s in (TEAM_A, TEAM_A, TEAM_B, EVERYTHING))
        assert a.try_acquire(), "two shards lead side by side"
        assert b.try_acquire()
        with pytest.raises(LeaseHeld, match=r"writes to .*h\.db for shard 'team=a' \(lock .*\.shard-"):
            a2.acquire()
        with pytest.raises(LeaseHeld, match=r"h\.db\.lock is held, by a daemon or by --selector shards\)$"):
            whole.acquire()
        a.release()
        assert not whole.try_acquire(), "shard b still leads"
        assert a2.try_acquire(), "a's standby takes over"
        a2.release()
        b.release()
        assert whole.try_acquire()
        with pytest.raises(LeaseHeld, match="a homeostat daemon without --selector already writes to"):
            a.acquire()
        whole.release()
        assert a.try_acquire()
        a.release()
    finally:
        store.close()
    files = sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".lock"))
    assert files == sorted(
        # the leases' files, and the migrations' (history.migrations_serialized)
        [
            "h.db.lock",
            "h.db.migrate.lock",
            f"h.db.shard-{TEAM_A.digest}.lock",
            f"h.db.shard-{TEAM_B.digest}.lock",
        ]
    )


def test_advisory_keys_are_stable_per_canonical_selector() -> None:
    assert advisory_key(EVERYTHING) == ADVISORY_KEY
    assert advisory_key(parse_selector("b=2,a=1")) == advisory_key(parse_selector("a=1, b=2"))
    assert len({advisory_key(s) for s in (EVERYTHING, TEAM_A, TEAM_B)}) == 3
    assert all(-(2**63) <= advisory_key(s) < 2**63 for s in (TEAM_A, TEAM_B)), "a PostgreSQL bigint"


# --- the journal and the last known good, per shard ---------------------------------------------


def pending(name: str) -> ActionRecord:
    return ActionRecord(
        time=NOW,
        kind="ECSService",
        name=name,
        action="update_service",
        target=f"prod/{name}",
        outcome=Outcome.PENDING,
        before={"desiredCount": 1},
        after={"desiredCount": 2},
        reason="drift",
        error=None,
        revision="r1",
        dry_run=False,
    )


def test_a_starting_shard_marks_only_its_own_pending_rows_interrupted(tmp_path: Path) -> None:
    """Shard b is mid-pass (its row pending, in flight) when shard a starts: b's row is untouched."""
    url = f"sqlite:///{tmp_path / 'h.db'}"
    a, b, whole = HistoryStore(url, TEAM_A.text), HistoryStore(url, TEAM_B.text), HistoryStore(url)
    try:
        a.add([pending("api")])
        b.add([pending("web")])
        whole.add([pending("cron")])
        (interrupted,) = mark_interrupted(a, structlog.get_logger())
        assert interrupted == replace(pending("api"), outcome=Outcome.INTERRUPTED)
        outcomes = {r.name: r.outcome for r in whole.query(HistoryQuery())}
        assert outcomes == {"api": Outcome.INTERRUPTED, "web": Outcome.PENDING, "cron": Outcome.PENDING}
        assert [r.name for r in whole.query(HistoryQuery(shard="team=b"))] == ["web"]
        assert [r.name for r in whole.query(HistoryQuery(shard=""))] == ["cron"]
        assert [r.name for r in mark_interrupted(whole, structlog.get_logger())] == ["cron"]
    finally:
        for store in (a, b, whole):
            store.close()


def test_each_shard_keeps_its_own_last_known_good(tmp_path: Path) -> None:
    """Mid-update one shard has the new revision and the other the old: neither overwrites the
    other's slot, and a daemon without a selector keeps slot 1."""
    store = HistoryStore(f"sqlite:///{tmp_path / 'h.db'}")
    log = structlog.get_logger()
    try:
        a, b, whole = (LastKnownGood(store.engine, log, s.text) for s in (TEAM_A, TEAM_B, EVERYTHING))
        assert whole.slot == SLOT_ID
        assert len({a.slot, b.slot, whole.slot}) == 3
        assert slot_id(TEAM_A.text) == a.slot
        state = tmp_path / "state"
        assert a.save(Revision("new"), state, {Path("x.yaml"): b"new"}, NOW)
        assert b.save(Revision("old"), state, {Path("x.yaml"): b"old"}, NOW)
        assert whole.save(Revision("whole"), state, {Path("x.yaml"): b"w"}, NOW)
        loaded = {name: slot.load() for name, slot in (("a", a), ("b", b), ("whole", whole))}
        assert {k: (v.revision if v else None) for k, v in loaded.items()} == {
            "a": "new",
            "b": "old",
            "whole": "whole",
        }
    finally:
        store.close()


def test_migration_0004_keeps_old_rows_and_slot_for_the_daemon_without_a_selector(tmp_path: Path) -> None:
    """A database of 0003 upgrades in place: its rows and its slot are those of the empty shard."""
    url = f"sqlite:///{tmp_path / 'h.db'}"
    engine = sa.create_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")
        connection.execute(
            sa.text(
                "INSERT INTO actions (time, kind, name, action, target, outcome, before, after, reason,"
                " revision, dry_run) VALUES ('2026-12-01 12:00:00', 'ECSService', 'api', 'update_service',"
                " 'prod/api', 'pending', '{}', '{}', 'drift', 'r0', 0)"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO last_known_good (id, revision, directory, saved_at, files)"
                " VALUES (1, 'r0', '/state', '2026-12-01 12:00:00', '{}')"
            )
        )
    engine.dispose()
    whole, shard = HistoryStore(url), HistoryStore(url, TEAM_A.text)
    try:
        assert mark_interrupted(shard, structlog.get_logger()) == []
        assert [r.name for r in mark_interrupted(whole, structlog.get_logger())] == ["api"]
        saved = LastKnownGood(whole.engine, structlog.get_logger()).load()
        assert saved is not None
        assert saved.revision == "r0"
        assert LastKnownGood(whole.engine, structlog.get_logger(), TEAM_A.text).load() is None
    finally:
        whole.close()
        shard.close()


# --- status and page ----------------------------------------------------------------------------


def test_status_page_and_status_command_name_the_shard() -> None:
    assert LoopStatus(resync_seconds=60).to_json()["selector"] is None
    document = LoopStatus(resync_seconds=60, selector="team=a").to_json()
    assert document["selector"] == "team=a"
    assert "Shard: <code>team=a</code>" in render_page(document, [], refresh_seconds=5)
    assert "Shard:" not in render_page(LoopStatus(resync_seconds=60).to_json(), [], refresh_seconds=5)
    out = io.StringIO()
    print_status(document, Console(file=out, width=120), wide=False)
    assert "· shard team=a" in out.getvalue().splitlines()[0]


# --- the commands on a shard --------------------------------------------------------------------


def seed(counts: dict[str, int]) -> Any:
    ecs = boto3.client("ecs", region_name=REGION)
    ecs.create_cluster(clusterName="prod")
    for name, count in counts.items():
        ecs.register_task_definition(
            family=name, containerDefinitions=[{"name": name, "image": "x", "memory": 64}]
        )
        ecs.create_service(cluster="prod", serviceName=name, taskDefinition=f"{name}:1", desiredCount=count)
    return ecs


def counts(ecs: Any, *services: str) -> dict[str, int]:
    found = ecs.describe_services(cluster="prod", services=list(services))["services"]
    return {s["serviceName"]: s["desiredCount"] for s in found}


def shard_directory(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    state.mkdir()
    (state / "api.yaml").write_text(service("api", 3, "{team: a}"))
    (state / "web.yaml").write_text(service("web", 3, "{team: b}"))
    return state


def test_plan_and_run_once_see_only_their_shard(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = shard_directory(tmp_path)
    url = f"sqlite:///{tmp_path / 'h.db'}"
    with mock_aws():
        ecs = seed({"api": 1, "web": 1})
        planned = run_main(capsys, "plan", "--desired-state", str(state), "--selector", "team=a", "--json")
        assert planned.returncode == 2
        assert [r["name"] for r in json.loads(planned.stdout)["resources"]] == ["api"]
        once = ["run", "--once", "--desired-state", str(state), "--history", url, "--log-format", "json"]
        assert run_main(capsys, *once, "--selector", "team=a").returncode == 0
        assert counts(ecs, "api", "web") == {"api": 3, "web": 1}
        assert run_main(capsys, *once, "--selector", "team=b").returncode == 0
        assert counts(ecs, "api", "web") == {"api": 3, "web": 3}
        rows = run_main(capsys, "history", "--history", url, "--json", "--selector", "team=b").stdout
        assert [json.loads(line)["name"] for line in rows.splitlines()] == ["web"]
        nothing = run_main(capsys, "plan", "--desired-state", str(state), "--selector", "team=zzz")
        assert nothing.returncode == 0
        assert (
            f"warning: no manifests in {state} match --selector team=zzz: nothing is managed"
            in nothing.stderr
        )


def test_plan_on_a_shard_that_cuts_a_bond_is_one_located_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "w.yaml").write_text(window("sunday", "{team: a}", "alarmNamePrefix: prod"))
    (state / "p.yaml").write_text(alarms("prod", "{team: b}", "alarmNamePrefix: prod-api"))
    result = run_main(capsys, "plan", "--desired-state", str(state), "--selector", "team=b")
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"{state}/p.yaml:1: metadata.labels: AlarmActions 'prod' is in shard 'team=b'")


def test_validate_with_a_selector_checks_that_shards_split(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A CI job can validate each shard: a cut bond is a located line and exit 1; a good shard
    is counted."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "w.yaml").write_text(window("sunday", "{team: a}", "alarmNamePrefix: prod"))
    (state / "p.yaml").write_text(alarms("prod", "{team: b}", "alarmNamePrefix: prod-api"))
    (state / "api.yaml").write_text(service("api", 3, "{team: c}"))
    whole = run_main(capsys, "validate", str(state))
    assert whole.returncode == 0
    assert whole.stdout.startswith("valid: 3 resources, revision ")
    cut = run_main(capsys, "validate", str(state), "--selector", "team=a")
    assert cut.returncode == 1
    (line,) = cut.stderr.strip().splitlines()
    assert line.startswith(
        f"{state}/w.yaml:1: metadata.labels: MaintenanceWindow 'sunday' is in shard 'team=a'"
    )
    good = run_main(capsys, "validate", str(state), "--selector", "team=c")
    assert good.returncode == 0
    assert good.stdout.startswith("valid: 3 resources, 1 in shard team=c, revision ")


def test_a_resource_that_moves_to_another_shard_is_not_unmanaged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Relabelled from a to b, api is managed by shard b now: shard a records no `unmanage` row
    (only a log line) and leaves it alone; a removed manifest is still unmanaged."""
    state = shard_directory(tmp_path)
    (state / "cron.yaml").write_text(service("cron", 1, "{team: a}"))
    url = f"sqlite:///{tmp_path / 'h.db'}"
    once = ["run", "--once", "--desired-state", str(state), "--history", url, "--log-format", "json"]
    with mock_aws():
        ecs = seed({"api": 1, "web": 1, "cron": 1})
        assert run_main(capsys, *once, "--selector", "team=a").returncode == 0
        (state / "api.yaml").write_text(service("api", 5, "{team: b}"))
        (state / "cron.yaml").unlink()
        second = run_main(capsys, *once, "--selector", "team=a")
        assert second.returncode == 0
        assert counts(ecs, "api") == {"api": 3}, "shard a no longer touches api"
    events = [json.loads(line) for line in second.stderr.splitlines() if line.startswith("{")]
    left = [(e["kind"], e["name"], e["selector"]) for e in events if e["event"] == "resource_left_shard"]
    assert left == [("ECSService", "api", "team=a")]
    store = HistoryStore(url)
    try:
        unmanaged = [(r.name, r.action) for r in store.query(HistoryQuery()) if r.action == "unmanage"]
    finally:
        store.close()
    assert unmanaged == [("cron", "unmanage")]


def test_run_once_beside_a_leader_of_the_same_shard_refuses_and_of_another_shard_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = shard_directory(tmp_path)
    url = f"sqlite:///{tmp_path / 'h.db'}"
    held = Lease(HistoryStore(url, TEAM_A.text).engine, TEAM_A)
    held.acquire()
    once = ["run", "--once", "--desired-state", str(state), "--history", url, "--log-format", "json"]
    try:
        with mock_aws():
            ecs = seed({"api": 1, "web": 1})
            refused = run_main(capsys, *once, "--selector", "team=a")
            assert refused.returncode == 1
            assert "for shard 'team=a'" in refused.stderr
            assert run_main(capsys, *once, "--selector", "team=b").returncode == 0
            assert counts(ecs, "api", "web") == {"api": 1, "web": 3}
    finally:
        held.release()


def daemon_settings(state: Path, url: str, selector: Selector) -> Settings:
    return Settings(
        command="run",
        desired_state=state,
        history=url,
        listen="127.0.0.1:0",
        resync=60,
        dry_run=False,
        region=REGION,
        log_format="json",
        selector=selector,
    )


def test_a_shard_is_selected_once_per_loaded_revision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An in-sync pass reuses the shard of an unchanged directory (no filtering, no bond checks)."""
    state = shard_directory(tmp_path)
    calls: list[Selector] = []
    real = reload.select

    def counted(desired: DesiredState, selector: Selector, bonds: Any = ()) -> DesiredState:
        calls.append(selector)
        return real(desired, selector, bonds)

    monkeypatch.setattr(reload, "select", counted)
    settings = daemon_settings(state, f"sqlite:///{tmp_path / 'h.db'}", TEAM_A)
    with mock_aws():
        runtime = build_runtime(settings)
        try:
            reloader = Loop(runtime).reloader
            assert reloader.reload(NOW) == {(Kind("ECSService"), "api")}
            assert reloader.reload(NOW) == {(Kind("ECSService"), "api")}
            assert calls == [TEAM_A]
            (state / "web.yaml").write_text(service("web", 4, "{team: a}"))
            assert reloader.reload(NOW) == {(Kind("ECSService"), "api"), (Kind("ECSService"), "web")}
            assert calls == [TEAM_A, TEAM_A]
        finally:
            runtime.close()


def test_a_daemon_rejects_a_revision_that_cuts_a_bond_and_keeps_the_one_in_force(tmp_path: Path) -> None:
    """The daemon's reload: an edit that puts a window's alarms in another shard is rejected for
    this shard like an invalid revision (recorded once); the previous shard stays in force."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "w.yaml").write_text(window("sunday", "{team: a}", "alarmNamePrefix: prod"))
    (state / "p.yaml").write_text(alarms("prod", "{team: a}", "alarmNamePrefix: prod-api"))
    url = f"sqlite:///{tmp_path / 'h.db'}"
    settings = daemon_settings(state, url, TEAM_A)
    with mock_aws():
        runtime = build_runtime(settings)
        try:
            reloader = Loop(runtime).reloader
            both = {(Kind("MaintenanceWindow"), "sunday"), (Kind("AlarmActions"), "prod")}
            assert reloader.reload(NOW) == both
            good = reloader.desired
            (state / "p.yaml").write_text(alarms("prod", "{team: b}", "alarmNamePrefix: prod-api"))
            assert reloader.reload(NOW) == both, "the revision in force is unchanged"
            assert reloader.reload(NOW) == both
            assert reloader.desired is good
            (error,) = reloader.errors
            assert "MaintenanceWindow 'sunday' is in shard 'team=a' but AlarmActions 'prod'" in error
        finally:
            runtime.close()
    store = HistoryStore(url)
    try:
        rejected = [r for r in store.query(HistoryQuery()) if r.action == "reject_revision"]
    finally:
        store.close()
    assert len(rejected) == 1
