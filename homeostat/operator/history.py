"""The action history store: SQLAlchemy 2, SQLite by default (WAL), migrated with Alembic.

Every planned or applied action is one row, written with the columns of the one record field
list (records.RECORD_FIELDS); a mutation's row is written `pending` before it is sent and
overwritten with its outcome when AWS answers (the journal). The schema is created and
upgraded at startup by running the packaged Alembic migrations on the
configured database, so upgrading homeostat never needs a manual step.
"""

import fcntl
import hashlib
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, RowMapping, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from homeostat.desired_state.instants import as_utc
from homeostat.operator.history_schema import actions
from homeostat.operator.overlaps import NOT_ACTING, ShardActed
from homeostat.operator.records import RECORD_FIELDS, ActionRecord, json_value
from homeostat.reconcilers.actions import Outcome
from homeostat.reconcilers.rollouts import Remembered

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration's revision. A database already at it is not handed to Alembic, whose
# import (with Mako) costs about 0.1 s of every start; tests/test_history.py checks this is
# Alembic's head, so a new migration cannot be forgotten here.
HEAD_REVISION = "0004"
# The rows `remembered` reads back per resource and action: the newest are the ones that decide.
REMEMBERED = 20
# The PostgreSQL advisory lock key migrations take turns on (lease.py's keys are others).
MIGRATION_KEY = int.from_bytes(hashlib.sha256(b"homeostat-migrations").digest()[:8], "big", signed=True)
# Resource names per `remembered` query: well under SQLite's oldest bound-parameter limit (999).
NAMES_PER_QUERY = 500


class HistoryError(Exception):
    """The history database cannot be used; the message is one line for the operator."""


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    since: datetime | None = None
    kind: str | None = None
    name: str | None = None
    revision: str | None = None
    limit: int = 100
    shard: str | None = None  # only the rows this shard's daemon wrote (canonical selector text)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def create_history_engine(url: str) -> Engine:
    """An engine for the URL, or HistoryError with a one-line reason."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise HistoryError(
            f"invalid history URL {url!r}: expected an SQLAlchemy URL such as sqlite:///homeostat.db"
        ) from exc
    try:
        engine = sa.create_engine(parsed, future=True)
    except (NoSuchModuleError, ImportError) as exc:
        raise HistoryError(f"invalid history URL {url!r}: unsupported database driver ({exc})") from exc
    if parsed.get_backend_name() == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def schema_revision(engine: Engine) -> str | None:
    """The migration the database is at, or None (new, or never migrated)."""
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table("alembic_version"):
            return None
        found = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    return str(found[0]) if len(found) == 1 else None


def migrate(engine: Engine) -> None:
    """Create or upgrade the schema to the newest migration. Two processes starting together
    on a new database (the two tasks of a standby pair, a fleet of shards) take turns: the
    second waits for the first's migration, finds the schema at its head and runs none, where
    it used to fail on the tables the first had just created."""
    if schema_revision(engine) == HEAD_REVISION:
        return
    with migrations_serialized(engine):
        if schema_revision(engine) != HEAD_REVISION:
            upgrade(engine)


def upgrade(engine: Engine) -> None:
    """Alembic's upgrade to head, in one transaction (callers serialize it: `migrate`)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextmanager
def migrations_serialized(engine: Engine) -> Iterator[None]:
    """One migrating process per database at a time: a PostgreSQL session advisory lock of its
    own key (not a lease's: a standby holds no lease yet, and must be able to migrate), or an
    flock on `<database>.migrate.lock` for an SQLite file. Blocking: the wait is as long as the
    other process's migration, and a process that dies mid-way lets go with its session/file."""
    backend = engine.url.get_backend_name()
    database = engine.url.database
    if backend == "postgresql":
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_KEY})
            try:
                yield
            finally:
                connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_KEY})
        return
    if backend != "sqlite" or not database or database == ":memory:":
        yield  # nobody else can see this database
        return
    handle = os.open(f"{database}.migrate.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)


class HistoryStore:
    """`shard` is the canonical `--selector` text of this daemon ("" without one): stamped on
    every row it inserts, and the only rows `mark_interrupted` touches."""

    def __init__(self, url: str, shard: str = "") -> None:
        self.url = url
        self.shard = shard
        self.engine = create_history_engine(url)
        try:
            migrate(self.engine)
        except SQLAlchemyError as exc:
            raise HistoryError(f"cannot open history database {url!r}: {first_line(exc)}") from exc

    def add(self, records: Sequence[ActionRecord]) -> list[int]:
        """Insert the records in one transaction; their row ids, in order."""
        return [row_id for row_id in self.write([(None, r) for r in records]) if row_id is not None]

    def write(self, entries: Sequence[tuple[int | None, ActionRecord]]) -> list[int | None]:
        """In one transaction: insert each record without a row id, and overwrite the row of
        each one with an id (a journaled `pending` row completed). The ids of the inserted
        rows, in the order given, None for the overwritten ones.

        One batched INSERT ... RETURNING for the new rows (ids in parameter order) and one
        executemany UPDATE for the completed ones, not a statement per row: journaling the
        2,000 alarms of one drift pass, then completing them, took 0.6 s row by row. The
        updates touch only rows that existed before, so they and the inserts commute."""
        inserts = [{**row_of(record), "shard": self.shard} for row_id, record in entries if row_id is None]
        updates = [{**row_of(record), "row_id": row_id} for row_id, record in entries if row_id is not None]
        with self.engine.begin() as connection:
            new_ids: list[int] = []
            if inserts:
                insert = actions.insert().returning(actions.c.id, sort_by_parameter_order=True)
                new_ids = [int(row_id) for row_id in connection.execute(insert, inserts).scalars()]
                if len(new_ids) != len(inserts):  # rolled back with the transaction
                    raise HistoryError(f"history insert returned {len(new_ids)} ids for {len(inserts)} rows")
            if updates:
                update = actions.update().where(actions.c.id == sa.bindparam("row_id"))
                connection.execute(update, updates)
        fresh = iter(new_ids)
        return [next(fresh) if row_id is None else None for row_id, _ in entries]

    def query(self, query: HistoryQuery) -> list[ActionRecord]:
        """Matching rows, the newest `limit` of them, oldest first."""
        statement = sa.select(actions).order_by(actions.c.time.desc(), actions.c.id.desc()).limit(query.limit)
        if query.since is not None:
            statement = statement.where(actions.c.time >= as_utc(query.since))
        if query.kind is not None:
            statement = statement.where(actions.c.kind == query.kind)
        if query.name is not None:
            statement = statement.where(actions.c.name == query.name)
        if query.revision is not None:
            statement = statement.where(actions.c.revision.startswith(query.revision, autoescape=True))
        if query.shard is not None:
            statement = statement.where(actions.c.shard == query.shard)
        with self.engine.connect() as connection:
            rows = connection.execute(statement).mappings().all()
        return [record_of(row) for row in reversed(rows)]

    def exists(self, record: ActionRecord) -> bool:
        """Whether a row with the same kind, name, action, target, outcome and error is stored
        (an `interrupted` or `pending` row never stands for a completed one)."""
        statement = (
            sa.select(actions.c.id)
            .where(actions.c.kind == record.kind)
            .where(actions.c.name == record.name)
            .where(actions.c.action == record.action)
            .where(actions.c.target == record.target)
            .where(actions.c.outcome == str(record.outcome))
            .where(actions.c.error == record.error)
            .limit(1)
        )
        with self.engine.connect() as connection:
            return connection.execute(statement).first() is not None

    def remembered(
        self, kind: str, names: Sequence[str], action: str, outcomes: Sequence[str]
    ) -> dict[str, list[Remembered]]:
        """Recall (reconcilers/rollouts.py): per resource of `names`, its rows of an action with
        any of these outcomes, newest first, at most REMEMBERED each (what a reconciler remembers
        across restarts). One query per NAMES_PER_QUERY resources, not one per resource: an
        in-sync pass of 1,000 services asked 2,000 queries before."""
        found: dict[str, list[Remembered]] = {}
        rank = (
            sa.func.row_number()
            .over(partition_by=actions.c.name, order_by=(actions.c.time.desc(), actions.c.id.desc()))
            .label("rank")
        )
        for start in range(0, len(names), NAMES_PER_QUERY):
            ranked = (
                sa.select(actions.c.name, actions.c.time, actions.c.after, actions.c.error, rank)
                .where(actions.c.kind == kind)
                .where(actions.c.name.in_(names[start : start + NAMES_PER_QUERY]))
                .where(actions.c.action == action)
                .where(actions.c.outcome.in_(outcomes))
                .subquery()
            )
            statement = (
                sa.select(ranked).where(ranked.c.rank <= REMEMBERED).order_by(ranked.c.name, ranked.c.rank)
            )
            with self.engine.connect() as connection:
                rows = connection.execute(statement).mappings().all()
            for row in rows:
                found.setdefault(row["name"], []).append(
                    Remembered(as_utc(row["time"]), dict(row["after"] or {}), row["error"])
                )
        return found

    def corrections(
        self, kind: str, since: datetime, action_names: Sequence[str]
    ) -> dict[str, list[ActionRecord]]:
        """Fights (operator/fights.py): the applied, not dry-run rows of these actions of one
        kind since `since`, by resource name, oldest first (kind+name and time are indexed)."""
        statement = (
            sa.select(actions)
            .where(actions.c.kind == kind)
            .where(actions.c.time >= as_utc(since))
            .where(actions.c.action.in_(action_names))
            .where(actions.c.outcome == str(Outcome.APPLIED))
            .where(actions.c.dry_run.is_(False))
            .order_by(actions.c.time, actions.c.id)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(statement).mappings().all()
        found: dict[str, list[ActionRecord]] = {}
        for row in rows:
            found.setdefault(row["name"], []).append(record_of(row))
        return found

    def acted_since(self, since: datetime) -> list[ShardActed]:
        """Overlapping shards (operator/overlaps.py): per resource and other shard with a
        selector, its newest acting, not dry-run row since `since` (time is indexed)."""
        statement = (
            sa.select(actions.c.kind, actions.c.name, actions.c.shard, sa.func.max(actions.c.time))
            .where(actions.c.time >= as_utc(since))
            .where(actions.c.shard.not_in((self.shard, "")))
            .where(actions.c.dry_run.is_(False))
            .where(actions.c.action.not_in(NOT_ACTING))
            .group_by(actions.c.kind, actions.c.name, actions.c.shard)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(statement).all()
        return [ShardActed(kind, name, shard, as_utc(at)) for kind, name, shard, at in rows]

    def newest_of(self, kind: str, action_names: Sequence[str]) -> dict[str, ActionRecord]:
        """Fights: the newest row of any of these actions per resource of one kind, by name."""
        newest = (
            sa.select(sa.func.max(actions.c.id))
            .where(actions.c.kind == kind)
            .where(actions.c.action.in_(action_names))
            .group_by(actions.c.name)
        )
        statement = sa.select(actions).where(actions.c.id.in_(newest.scalar_subquery()))
        with self.engine.connect() as connection:
            rows = connection.execute(statement).mappings().all()
        return {row["name"]: record_of(row) for row in rows}

    def mark_interrupted(self) -> list[ActionRecord]:
        """Turn every `pending` journal row of this shard into `interrupted` (its data kept);
        those rows, oldest first. Only the shard's lease holder may call it: a live writer's
        pending rows are in flight, and another shard's writer may be live."""
        pending = (actions.c.outcome == str(Outcome.PENDING)) & (actions.c.shard == self.shard)
        with self.engine.begin() as connection:
            rows = (
                connection.execute(sa.select(actions).where(pending).order_by(actions.c.id)).mappings().all()
            )
            connection.execute(actions.update().where(pending).values(outcome=str(Outcome.INTERRUPTED)))
        return [replace(record_of(row), outcome=Outcome.INTERRUPTED) for row in rows]

    def close(self) -> None:
        self.engine.dispose()


def row_of(record: ActionRecord) -> dict[str, Any]:
    """The history row of a record: one column per record field. SQLite keeps the wall time
    and drops the offset, so every instant is stored in UTC."""
    row = {name: json_value(getattr(record, name)) for name in RECORD_FIELDS}
    row["time"] = as_utc(record.time)
    return row


def record_of(row: RowMapping) -> ActionRecord:
    values = {name: row[name] for name in RECORD_FIELDS}
    values.update(time=as_utc(row["time"]), outcome=Outcome(row["outcome"]), dry_run=bool(row["dry_run"]))
    return ActionRecord(**values)


def first_line(exc: BaseException) -> str:
    """The first line of a database error's message: enough for a one-line report."""
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0] if text else type(exc).__name__
