"""Specification of the action history store: Alembic schema, SQLite WAL, queries, JSON rows."""

import fcntl
import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from homeostat.desired_state.identifiers import Kind
from homeostat.operator.history import (
    HEAD_REVISION,
    MIGRATIONS,
    NAMES_PER_QUERY,
    REMEMBERED,
    HistoryError,
    HistoryQuery,
    HistoryStore,
    create_history_engine,
    schema_revision,
    upgrade,
)
from homeostat.operator.history_schema import actions
from homeostat.operator.records import RECORD_FIELDS, ActionRecord
from homeostat.reconcilers.actions import Action, Outcome
from tests.conftest import HISTORY_JSON_FIELDS
from tests.waiting import wait_for

T0 = datetime(2026, 11, 27, 12, tzinfo=UTC)
CONTRACT_FIELDS = HISTORY_JSON_FIELDS


def record(
    name: str = "api",
    *,
    minutes: int = 0,
    kind: str = "ECSService",
    outcome: Outcome = Outcome.APPLIED,
    revision: str = "abc123",
    error: str | None = None,
) -> ActionRecord:
    return ActionRecord(
        time=T0 + timedelta(minutes=minutes),
        kind=kind,
        name=name,
        action="update_service",
        target=f"prod/{name}",
        outcome=outcome,
        before={"desiredCount": 2},
        after={"desiredCount": 4},
        reason="drift: desiredCount differs from the manifest",
        error=error,
        revision=revision,
        dry_run=outcome == Outcome.DRY_RUN,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HistoryStore]:
    history = HistoryStore(f"sqlite:///{tmp_path / 'history.db'}")
    yield history
    history.close()


def test_migration_creates_the_schema(tmp_path: Path) -> None:
    """Opening a new database runs the Alembic migrations: the actions table and its version exist."""
    url = f"sqlite:///{tmp_path / 'new.db'}"
    HistoryStore(url).close()
    engine = sa.create_engine(url)
    inspector = sa.inspect(engine)
    assert {"actions", "alembic_version"} <= set(inspector.get_table_names())
    columns = {c["name"] for c in inspector.get_columns("actions")}
    assert CONTRACT_FIELDS | {"id", "target", "conflict", "shard"} == columns
    # The shard is the writer's, stamped by the store, not a record field (migration 0004).
    assert set(RECORD_FIELDS) | {"id", "shard"} == columns, "one column per record field"
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    with engine.connect() as connection:
        assert connection.execute(sa.text("select version_num from alembic_version")).scalar_one() == head
    engine.dispose()


def test_the_head_revision_constant_is_alembics_head_and_an_old_schema_is_upgraded(tmp_path: Path) -> None:
    """HEAD_REVISION lets a current database skip Alembic: it must be the newest migration, and a
    database at an older one is still upgraded (the shortcut is only taken at the head)."""
    from alembic import command
    from alembic.config import Config

    from homeostat.operator.history import HEAD_REVISION, schema_revision

    assert ScriptDirectory(str(MIGRATIONS)).get_current_head() == HEAD_REVISION
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    assert schema_revision(engine) is None
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    assert schema_revision(engine) == "0001"
    HistoryStore(url).close()
    assert schema_revision(engine) == HEAD_REVISION
    engine.dispose()


def test_migration_is_idempotent_and_keeps_rows(tmp_path: Path) -> None:
    """Reopening an existing database migrates nothing and keeps every row."""
    url = f"sqlite:///{tmp_path / 'h.db'}"
    first = HistoryStore(url)
    first.add([record("api"), record("web", minutes=1)])
    first.close()
    second = HistoryStore(url)
    assert [r.name for r in second.query(HistoryQuery())] == ["api", "web"]
    second.close()


def test_sqlite_runs_in_wal_mode(store: HistoryStore, tmp_path: Path) -> None:
    """SQLite history databases use write-ahead logging (readers never block the daemon)."""
    with store.engine.connect() as connection:
        assert connection.execute(sa.text("PRAGMA journal_mode")).scalar_one() == "wal"
    store.add([record()])
    assert (tmp_path / "history.db-wal").exists()


def test_rows_round_trip(store: HistoryStore) -> None:
    """A stored record reads back equal, with its time in UTC."""
    original = record(error="UpdateService failed: boom", outcome=Outcome.FAILED)
    store.add([original])
    (back,) = store.query(HistoryQuery())
    assert back == original
    assert back.time.tzinfo is UTC


def test_query_filters_by_since(store: HistoryStore) -> None:
    """`since` keeps rows at or after the instant."""
    store.add([record("a", minutes=0), record("b", minutes=10), record("c", minutes=20)])
    rows = store.query(HistoryQuery(since=T0 + timedelta(minutes=10)))
    assert [r.name for r in rows] == ["b", "c"]


def test_query_filters_by_kind_and_name(store: HistoryStore) -> None:
    """`kind` and `name` match exactly and combine."""
    store.add(
        [
            record("api", kind="ECSService"),
            record("api", kind="AlarmActions", minutes=1),
            record("web", kind="ECSService", minutes=2),
        ]
    )
    assert [(r.kind, r.name) for r in store.query(HistoryQuery(kind="ECSService"))] == [
        ("ECSService", "api"),
        ("ECSService", "web"),
    ]
    assert [(r.kind, r.name) for r in store.query(HistoryQuery(name="api"))] == [
        ("ECSService", "api"),
        ("AlarmActions", "api"),
    ]
    assert [(r.kind, r.name) for r in store.query(HistoryQuery(kind="AlarmActions", name="api"))] == [
        ("AlarmActions", "api")
    ]
    assert store.query(HistoryQuery(name="ap")) == []


def test_query_filters_by_revision_prefix(store: HistoryStore) -> None:
    """`revision` matches a prefix, as short git commits are typed."""
    store.add([record("a", revision="abc123"), record("b", revision="abd999", minutes=1)])
    assert [r.name for r in store.query(HistoryQuery(revision="abc"))] == ["a"]
    assert [r.name for r in store.query(HistoryQuery(revision="ab"))] == ["a", "b"]


def test_revision_filter_treats_wildcards_literally(store: HistoryStore) -> None:
    """SQL wildcard characters in a revision filter match themselves only."""
    store.add([record("a", revision="abc123")])
    assert store.query(HistoryQuery(revision="%")) == []
    assert store.query(HistoryQuery(revision="a_c")) == []


def test_limit_keeps_the_newest_rows_oldest_first(store: HistoryStore) -> None:
    """`limit` returns the newest N rows, printed oldest first."""
    store.add([record(f"s{i}", minutes=i) for i in range(10)])
    assert [r.name for r in store.query(HistoryQuery(limit=3))] == ["s7", "s8", "s9"]


def test_rows_with_one_time_keep_insertion_order(store: HistoryStore) -> None:
    """Rows recorded in the same instant come back in the order they were recorded."""
    store.add([record("first"), record("second"), record("third")])
    assert [r.name for r in store.query(HistoryQuery())] == ["first", "second", "third"]
    assert [r.name for r in store.query(HistoryQuery(limit=2))] == ["second", "third"]


def journal_batch_round_trips(store: HistoryStore, rows: int = 1_500) -> None:
    """One write that completes every other journaled row and inserts new ones between them:
    each new row gets its own id, in the order given, and each completed row is the one named
    (the batched INSERT ... RETURNING and executemany UPDATE of `write`). Shared with the
    PostgreSQL suite."""
    pending = [record(f"p{i}", outcome=Outcome.PENDING) for i in range(rows)]
    ids = store.add(pending)
    assert len(set(ids)) == rows
    assert ids == sorted(ids)
    entries: list[tuple[int | None, ActionRecord]] = []
    for i, row_id in enumerate(ids):
        if i % 2 == 0:
            entries.append((row_id, replace(pending[i], outcome=Outcome.APPLIED)))
        entries.append((None, record(f"n{i}", minutes=1)))
    written = store.write(entries)
    assert [w is None for w in written] == [row_id is not None for row_id, _ in entries]
    new_ids = [w for w in written if w is not None]
    assert len(new_ids) == rows
    assert new_ids == sorted(new_ids)
    assert min(new_ids) > max(ids)
    by_name = {r.name: r for r in store.query(HistoryQuery(limit=3 * rows))}
    assert len(by_name) == 2 * rows
    assert all(
        by_name[f"p{i}"].outcome == (Outcome.APPLIED if i % 2 == 0 else Outcome.PENDING) for i in range(rows)
    )
    with store.engine.connect() as connection:
        named = dict(
            connection.execute(sa.select(actions.c.id, actions.c.name).where(actions.c.id.in_(new_ids))).all()
        )
    assert [named[row_id] for row_id in new_ids] == [f"n{i}" for i in range(rows)]


def test_a_journal_batch_gets_its_ids_in_order_and_completes_the_rows_it_names(store: HistoryStore) -> None:
    journal_batch_round_trips(store)


def test_json_rows_carry_the_contract_fields() -> None:
    """`history --json` objects carry every field of contract section 5, time in RFC 3339 UTC."""
    row = record(outcome=Outcome.DRY_RUN).to_json()
    assert set(row) >= CONTRACT_FIELDS
    assert row["time"] == "2026-11-27T12:00:00Z"
    assert row["outcome"] == "dry_run"
    assert row["dry_run"] is True
    assert row["before"] == {"desiredCount": 2}
    assert row["after"] == {"desiredCount": 4}
    assert row["error"] is None
    assert json.loads(json.dumps(row)) == row


def test_json_time_is_converted_to_utc() -> None:
    """A record timed in another zone prints its UTC instant."""
    berlin = datetime(2026, 11, 27, 13, tzinfo=UTC).astimezone(ZoneInfo("Europe/Berlin"))
    moved = replace(record(), time=berlin)
    assert moved.to_json()["time"] == "2026-11-27T13:00:00Z"


def test_records_of_conflicts_say_why() -> None:
    """A conflicted action's record has outcome conflict, the conflict in its own field and the
    plain reason (conflicts stay structured in every view)."""
    action = Action(
        kind=Kind("ECSService"),
        name="worker",
        action="update_service",
        target="prod/worker",
        before={"desiredCount": 3},
        after={"desiredCount": 6},
        reason="drift: desiredCount differs from the manifest",
        conflict="service has an Application Auto Scaling target",
    )
    row = ActionRecord.of(action, Outcome.CONFLICT, time=T0, revision="r1")
    assert row.outcome == Outcome.CONFLICT
    assert not row.dry_run
    assert row.conflict == "service has an Application Auto Scaling target"
    assert row.reason == "drift: desiredCount differs from the manifest"
    assert row.to_json()["conflict"] == "service has an Application Auto Scaling target"


@pytest.mark.parametrize(
    "url",
    ["not a url", "nosuchdb://x/y", "sqlite:////nonexistent-dir/sub/h.db", "postgresql+nodriver://u@h/d"],
)
def test_bad_history_urls_raise_one_line_errors(url: str) -> None:
    """A bad URL, unknown driver or unopenable database is a HistoryError with a one-line message."""
    with pytest.raises(HistoryError) as info:
        HistoryStore(url)
    message = str(info.value)
    assert "\n" not in message
    assert url in message


def test_times_in_other_zones_are_stored_as_their_utc_instant(store: HistoryStore) -> None:
    """A record timed in another zone reads back as the same instant, and `since` compares instants."""
    berlin = (T0 + timedelta(hours=1)).astimezone(ZoneInfo("Europe/Berlin"))
    store.add([replace(record("late"), time=berlin), record("early")])
    rows = store.query(HistoryQuery())
    assert [(r.name, r.time) for r in rows] == [("early", T0), ("late", T0 + timedelta(hours=1))]
    assert [r.name for r in store.query(HistoryQuery(since=T0 + timedelta(minutes=30)))] == ["late"]


def test_remembered_reads_a_group_newest_first_bounded_per_resource(store: HistoryStore) -> None:
    """One batched recall for many resources: per name its rows of the action with the asked
    outcomes, newest first, at most REMEMBERED each; other actions, outcomes, kinds and names
    are not recalled; names beyond one query's batch are recalled all the same."""
    names = [f"svc-{i:04d}" for i in range(NAMES_PER_QUERY + 3)]
    rows = [record(name, minutes=i % 7) for i, name in enumerate(names)]
    rows += [record("api", minutes=m) for m in range(REMEMBERED + 5)]
    rows += [replace(record("api", minutes=100), outcome=Outcome.INTERRUPTED)]
    rows += [replace(record("api", minutes=200), outcome=Outcome.FAILED)]
    rows += [replace(record("api", minutes=300), action="redeploy")]
    rows += [record("api", minutes=400, kind="AlarmActions")]
    store.add(rows)
    found = store.remembered(
        "ECSService", ["api", "never-seen", *names], "update_service", ("applied", "interrupted")
    )
    api = found["api"]
    assert len(api) == REMEMBERED
    assert [r.time for r in api] == sorted((r.time for r in api), reverse=True)
    assert api[0].time == T0 + timedelta(minutes=100)  # the interrupted row, the newest asked for
    assert api[-1].time == T0 + timedelta(minutes=REMEMBERED + 5 - (REMEMBERED - 1))
    assert "never-seen" not in found
    assert {name: len(found[name]) for name in names} == dict.fromkeys(names, 1)
    assert found[names[-1]][0].after == {"desiredCount": 4}
    only_applied = store.remembered("ECSService", ["api"], "update_service", ("applied",))
    assert only_applied["api"][0].time == T0 + timedelta(minutes=REMEMBERED + 4)
    assert store.remembered("ECSService", [], "update_service", ("applied",)) == {}


OPEN_HISTORY = (
    "import sys; from homeostat.operator.history import HistoryStore; HistoryStore(sys.argv[1]).close()"
)


@contextmanager
def another_process_opening(url: str) -> Iterator[Callable[[], None]]:
    """A second process opening the history at `url`; the test calls the yielded `finished()`
    once it has let that process go, which asserts it opened the history and exited 0. Killed if
    the test fails before (both backends' take-turns tests)."""
    process = subprocess.Popen([sys.executable, "-c", OPEN_HISTORY, url], stderr=subprocess.PIPE, text=True)

    def finished() -> None:
        _, errors = process.communicate(timeout=60)
        assert process.returncode == 0, errors

    try:
        yield finished
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_two_processes_migrating_one_new_sqlite_database_take_turns(tmp_path: Path) -> None:
    """While one process migrates a new database (here the test, holding the migration lock),
    another that opens it waits on the lock (seen as a blocked flock in /proc/locks), then
    finds the schema at its head and opens it, instead of failing on the tables created."""
    database = tmp_path / "new.db"
    url = f"sqlite:///{database}"
    lock = os.open(f"{database}.migrate.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    inode = os.fstat(lock).st_ino
    with another_process_opening(url) as finished:
        wait_for(
            lambda: any(
                "->" in line and f":{inode} " in line for line in Path("/proc/locks").read_text().splitlines()
            ),
            timeout=60,
            what="the second process to wait on the migration lock",
        )
        engine = create_history_engine(url)
        assert schema_revision(engine) is None, "it migrated without the lock"
        upgrade(engine)  # the first process's migration
        engine.dispose()
        os.close(lock)
        finished()
    assert stat.S_IMODE(os.stat(f"{database}.migrate.lock").st_mode) == 0o600
    engine = create_history_engine(url)
    assert schema_revision(engine) == HEAD_REVISION
    engine.dispose()
