"""PostgreSQL as the history database: migrations, history, last-known-good and the lease."""

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import structlog

from homeostat.operator.execution import mark_interrupted
from homeostat.operator.history import (
    HEAD_REVISION,
    MIGRATION_KEY,
    HistoryQuery,
    HistoryStore,
    schema_revision,
    upgrade,
)
from homeostat.operator.lease import Lease, LeaseHeld
from homeostat.operator.records import ActionRecord
from homeostat.reconcilers.actions import Outcome
from tests.conftest import MotoServer, run_cli
from tests.daemon_helpers import DaemonProcess, desired_count, seed_services, service_manifest
from tests.postgres_server import PostgresServer, postgres_server
from tests.test_history import another_process_opening, journal_batch_round_trips
from tests.test_shard_overlaps import acted_since_answers
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e  # every test here runs a PostgreSQL server

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


def test_history_on_postgresql_migrates_and_round_trips(postgres: PostgresServer) -> None:
    """Alembic creates the schema on PostgreSQL; rows read back with their JSON and UTC times."""
    store = HistoryStore(postgres.url)
    try:
        record = ActionRecord(
            time=NOW,
            kind="ECSService",
            name="api",
            action="update_service",
            target="prod/api",
            outcome=Outcome.APPLIED,
            before={"desiredCount": 1},
            after={"desiredCount": 2},
            reason="drift",
            error=None,
            revision="pg-test",
            dry_run=False,
        )
        store.add([record])
        (row,) = store.query(HistoryQuery(revision="pg-test"))
        assert row == record
        # The batched recall's window function, on PostgreSQL too.
        store.add([replace(record, time=NOW + timedelta(minutes=1), after={"desiredCount": 3})])
        recalled = store.remembered("ECSService", ["api", "web"], "update_service", ("applied",))
        assert [r.after for r in recalled["api"]] == [{"desiredCount": 3}, {"desiredCount": 2}]
        assert "web" not in recalled
    finally:
        store.close()


def test_journal_on_postgresql_completes_in_place_and_marks_interrupted(postgres: PostgresServer) -> None:
    """The journal's statements on PostgreSQL: a pending row gets its id back, is overwritten in
    place when completed, and a pending leftover becomes interrupted with its data kept."""
    store = HistoryStore(postgres.url)
    try:
        pending = ActionRecord(
            time=NOW,
            kind="AlarmActions",
            name="prod",
            action="disable_alarm_actions",
            target="prod-cpu",
            outcome=Outcome.PENDING,
            before={"actionsEnabled": True},
            after={"actionsEnabled": False},
            reason="maintenance window sunday started",
            error=None,
            revision="pg-journal",
            dry_run=False,
            conflict=None,
        )
        done, left = store.add([pending, replace(pending, target="prod-mem")])
        store.write([(done, replace(pending, outcome=Outcome.APPLIED))])
        (interrupted,) = mark_interrupted(store, structlog.get_logger())
        assert interrupted == replace(pending, target="prod-mem", outcome=Outcome.INTERRUPTED)
        rows = store.query(HistoryQuery(revision="pg-journal"))
        assert [(r.target, r.outcome) for r in rows] == [
            ("prod-cpu", Outcome.APPLIED),
            ("prod-mem", Outcome.INTERRUPTED),
        ]
        assert left > done
    finally:
        store.close()


def emptied(store: HistoryStore) -> HistoryStore:
    """`store` with no action rows: the module's server is shared by its tests."""
    with store.engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM actions"))
    return store


def test_a_journal_batch_on_postgresql_gets_its_ids_in_order(postgres: PostgresServer) -> None:
    """The batched INSERT ... RETURNING (ids in parameter order) and executemany UPDATE on PostgreSQL."""
    store = HistoryStore(postgres.url)
    try:
        journal_batch_round_trips(emptied(store))
    finally:
        store.close()


def test_other_shards_actions_on_postgresql(postgres: PostgresServer) -> None:
    """Overlapping shards' query (`acted_since`: grouped, newest per resource and shard) on PostgreSQL."""
    emptied(HistoryStore(postgres.url)).close()
    acted_since_answers(postgres.url)


def test_postgresql_lease_admits_one_writer_until_released(postgres: PostgresServer) -> None:
    """The advisory lock refuses a second writer and is free once the first lets go."""
    first, second = HistoryStore(postgres.url), HistoryStore(postgres.url)
    try:
        lease_a, lease_b = Lease(first.engine), Lease(second.engine)
        lease_a.acquire()
        with pytest.raises(LeaseHeld, match="another homeostat daemon"):
            lease_b.acquire()
        assert lease_b.try_acquire() is False  # a standby's poll: not yet, and no exception
        assert lease_a.try_acquire() is True  # already ours, without a second hold
        assert lease_a.still_held()
        lease_a.release()
        lease_b.acquire()
        assert lease_b.still_held()
        lease_b.release()
    finally:
        first.close()
        second.close()


def test_daemon_on_postgresql_is_single_writer_even_after_sigkill(
    postgres: PostgresServer, moto_server: MotoServer, tmp_path: Path
) -> None:
    """A daemon on PostgreSQL records its actions; `run --once` beside it is refused; after the
    daemon is SIGKILLed the server drops its lock and `run --once` works."""
    ecs = seed_services(moto_server, {"api": 1})
    desired = tmp_path / "desired"
    desired.mkdir()
    (desired / "api.yaml").write_text(service_manifest("api", 2))
    env = moto_server.env(HOMEOSTAT_HISTORY=postgres.url, HOMEOSTAT_DESIRED_STATE=str(desired))
    daemon = subprocess.Popen(
        [sys.executable, "-m", "homeostat", "run", "--listen", "127.0.0.1:0", "--resync", "300"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: (
                ecs.describe_services(cluster="prod", services=["api"])["services"][0]["desiredCount"] == 2
            ),
            timeout=30,
            what="the daemon to fix api",
        )
        refused = run_cli("run", "--once", env=env)
        assert refused.returncode == 1
        assert "another homeostat daemon already writes to" in refused.stderr
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=10)
        once = wait_for(
            lambda: (r := run_cli("run", "--once", env=env)).returncode == 0 and r,
            timeout=30,
            what="the lock to be released",
        )
        assert "1 resources" in once.stdout
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(timeout=10)
    rows = [json.loads(line) for line in run_cli("history", "--json", env=env).stdout.splitlines()]
    assert ("api", "update_service", "applied") in {(r["name"], r["action"], r["outcome"]) for r in rows}


def _standby(moto: MotoServer, desired: Path, url: str, log_dir: Path) -> DaemonProcess:
    """A daemon started beside a live leader: it must come up as a standby and do nothing."""
    daemon = DaemonProcess(moto, desired, url, "--resync", "300", log_dir=log_dir)
    wait_for(
        lambda: daemon.process.poll() is None and daemon.get("/readyz").text == "standby\n",
        timeout=60,
        what=f"a standby; log: {daemon.log_text()[-2000:]}",
    )
    assert daemon.get("/readyz").status_code == 503
    assert daemon.get("/healthz").status_code == 200
    assert "homeostat_leader 0.0" in daemon.get("/metrics").text
    return daemon


def _took_over(daemon: DaemonProcess) -> None:
    # The lease is polled every second (tests/test_standby.py); 30 s allows for a loaded machine.
    wait_for(lambda: daemon.events("standby_took_over"), timeout=30, what="the standby to take the lease")
    daemon.wait_ready(timeout=60)
    assert "homeostat_leader 1.0" in daemon.get("/metrics").text


def _end_the_lock_session(url: str) -> None:
    """pg_terminate_backend on the session holding homeostat's advisory lock."""
    store = HistoryStore(url)
    try:
        with store.engine.connect() as connection:
            pids = (
                connection.execute(
                    sa.text("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted")
                )
                .scalars()
                .all()
            )
            assert len(pids) == 1
            connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pids[0]})
    finally:
        store.close()


def test_standby_on_postgresql_takes_over_after_sigkill_shutdown_and_a_lost_session(
    postgres: PostgresServer, moto_server: MotoServer, tmp_path: Path
) -> None:
    """Two daemons on one PostgreSQL history: the second stands by (503 "standby", leader 0,
    no pass); when the leader is SIGKILLed the server drops its session and the standby leads
    and enforces; a third then stands by and leads once that leader shuts down cleanly; when
    the server ends that leader's lock session, it stops (exit 1) and a fourth leads."""
    ecs = seed_services(moto_server, {"api": 1})
    desired = tmp_path / "desired"
    desired.mkdir()
    (desired / "api.yaml").write_text(service_manifest("api", 2))
    daemons = [DaemonProcess(moto_server, desired, postgres.url, "--resync", "300", log_dir=tmp_path)]
    try:
        first = daemons[0]
        first.wait_ready(timeout=60)
        assert "homeostat_leader 1.0" in first.get("/metrics").text
        second = _standby(moto_server, desired, postgres.url, tmp_path)
        daemons.append(second)
        ecs.update_service(cluster="prod", service="api", desiredCount=1)
        assert not second.events("pass_started")  # it stands by: no pass
        first.kill()
        _took_over(second)
        wait_for(
            lambda: desired_count(ecs, "api") == 2,
            timeout=30,
            what="the new leader to restore api",
        )
        third = _standby(moto_server, desired, postgres.url, tmp_path)
        daemons.append(third)
        assert second.terminate() == 0
        _took_over(third)
        fourth = _standby(moto_server, desired, postgres.url, tmp_path)
        daemons.append(fourth)
        _end_the_lock_session(postgres.url)  # as a failover does: the leader must stop acting
        assert third.process.wait(timeout=30) == 1
        assert third.events("lease_lost")
        assert "the single-writer lease was lost" in third.log_text()
        _took_over(fourth)
        assert fourth.terminate() == 0
        assert "Traceback" not in second.log_text() + third.log_text() + fourth.log_text()
    finally:
        for daemon in daemons:
            daemon.kill()


def test_two_processes_migrating_one_new_postgresql_database_take_turns(postgres: PostgresServer) -> None:
    """The standby pair's first start on a new database: while one process migrates (here the
    test, holding the migration advisory lock), the other waits on the lock (pg_locks shows
    it not granted), then finds the schema at its head, instead of failing on its tables."""
    admin = sa.create_engine(postgres.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text("CREATE DATABASE fresh_pair"))
    url = postgres.url.rsplit("/", 1)[0] + "/fresh_pair"
    engine = sa.create_engine(url)
    holder = engine.connect()
    holder.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_KEY})
    holder.commit()
    try:
        with another_process_opening(url) as finished:

            def waiting() -> bool:
                with admin.connect() as connection:
                    query = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    return bool(connection.execute(sa.text(query)).scalar())

            wait_for(waiting, timeout=60, what="the second process to wait on the migration lock")
            assert schema_revision(engine) is None, "it migrated without the lock"
            upgrade(engine)  # the first process's migration
            holder.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_KEY})
            holder.commit()
            finished()
    finally:
        holder.close()
    assert schema_revision(engine) == HEAD_REVISION
    engine.dispose()
    admin.dispose()
