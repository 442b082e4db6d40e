"""Shards end to end: several `run --selector` daemons on one directory and one history database.

Specification: contract section 3 (`--selector`: several daemons share one directory and one
history database, each owning a shard, each with its own lease) and section 4 (a second `run`
of the same shard is its standby); issue 15 items 5 and 6. The real CLI against moto's server,
on SQLite and on the real PostgreSQL server the suite starts (tests/postgres_server.py).
"""

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog

from homeostat.desired_state.selector import EVERYTHING, parse_selector
from homeostat.operator.execution import mark_interrupted
from homeostat.operator.history import HistoryQuery, HistoryStore
from homeostat.operator.lease import Lease, LeaseHeld
from homeostat.operator.records import ActionRecord
from homeostat.reconcilers.actions import Outcome
from tests.conftest import MotoServer, run_cli
from tests.daemon_helpers import DaemonProcess, desired_count, seed_services
from tests.postgres_server import PostgresServer, postgres_server
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

TEAM_A, TEAM_B = parse_selector("team=a"), parse_selector("team=b")


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


def labelled_service(name: str, count: int, team: str) -> str:
    return (
        f"apiVersion: homeostat/v1\nkind: ECSService\nmetadata:\n  name: {name}\n  labels: {{team: {team}}}\n"
        f"spec:\n  cluster: prod\n  service: {name}\n  desiredCount: {count}\n"
    )


def _leader(daemon: DaemonProcess) -> None:
    daemon.wait_ready(timeout=60)
    assert "homeostat_leader 1.0" in daemon.get("/metrics").text


def _standby(daemon: DaemonProcess) -> None:
    wait_for(
        lambda: daemon.process.poll() is None and daemon.get("/readyz").text == "standby\n",
        timeout=60,
        what=f"a standby; log: {daemon.log_text()[-2000:]}",
    )
    assert "homeostat_leader 0.0" in daemon.get("/metrics").text


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_two_shards_lead_side_by_side_each_reconciling_only_its_own_resources(
    database: str, moto_server: MotoServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Shards a and b on one directory and one history database both lead and each fixes only
    its own service (c's has no daemon and is left alone); a second daemon of shard a stands by
    and takes over when a's leader stops, while b leads on; `run --once` is refused for shard a
    and runs for shard c; every row names its writer's shard."""
    url = (
        request.getfixturevalue("postgres").url
        if database == "postgresql"
        else f"sqlite:///{tmp_path / 'h.db'}"
    )
    ecs = seed_services(moto_server, {"api": 1, "web": 1, "cron": 1})
    desired = tmp_path / "desired"
    desired.mkdir()
    (desired / "api.yaml").write_text(labelled_service("api", 3, "a"))
    (desired / "web.yaml").write_text(labelled_service("web", 4, "b"))
    (desired / "cron.yaml").write_text(labelled_service("cron", 5, "c"))
    env = moto_server.env(HOMEOSTAT_HISTORY=url, HOMEOSTAT_DESIRED_STATE=str(desired))

    def daemon(selector: str) -> DaemonProcess:
        return DaemonProcess(
            moto_server, desired, url, "--resync", "2", "--selector", selector, log_dir=tmp_path
        )

    daemons = [daemon("team=a")]
    try:
        _leader(daemons[0])  # first alone: it migrates a new database
        daemons.append(daemon("team=b"))
        shard_a, shard_b = daemons
        _leader(shard_b)
        wait_for(lambda: desired_count(ecs, "web") == 4, timeout=30, what="shard b to fix web")
        assert desired_count(ecs, "api") == 3
        assert desired_count(ecs, "cron") == 1, "no daemon owns shard c"
        for process, own, selector in ((shard_a, "api", "team=a"), (shard_b, "web", "team=b")):
            status = process.get("/status").json()
            assert status["selector"] == selector
            assert [r["name"] for r in status["resources"]] == [own]
            page = process.get("/").text
            assert f"Shard: <code>{selector}</code>" in page
            other = "web" if own == "api" else "api"
            assert f"ECSService/{own}" in page, "its history rows"
            assert f"ECSService/{other}" not in page, "not the other shard's"
            (started,) = process.events("daemon_started")
            assert started["selector"] == selector

        ecs.update_service(cluster="prod", service="web", desiredCount=1)
        wait_for(lambda: desired_count(ecs, "web") == 4, timeout=30, what="shard b to fix drift")

        refused = run_cli("run", "--once", "--selector", "team=a", env=env)
        assert refused.returncode == 1
        assert "for shard 'team=a'" in refused.stderr
        once = run_cli("run", "--once", "--selector", "team=c", env=env)
        assert once.returncode == 0, once.stderr
        assert desired_count(ecs, "cron") == 5
        assert desired_count(ecs, "api") == 3

        daemons.append(daemon("team=a"))
        spare = daemons[-1]
        _standby(spare)
        assert shard_a.terminate() == 0
        wait_for(lambda: spare.events("standby_took_over"), timeout=30, what="shard a's standby to lead")
        _leader(spare)
        ecs.update_service(cluster="prod", service="api", desiredCount=1)
        wait_for(lambda: desired_count(ecs, "api") == 3, timeout=30, what="the new leader of a to fix api")
        assert shard_b.process.poll() is None, "shard b leads on"
        for process in daemons:
            assert "Traceback" not in process.log_text()
    finally:
        for process in daemons:
            process.kill()
    store = HistoryStore(url)
    try:
        written = {
            shard: {r.name for r in store.query(HistoryQuery(shard=shard, limit=1000))}
            for shard in ("team=a", "team=b", "team=c")
        }
    finally:
        store.close()
    assert written == {"team=a": {"api"}, "team=b": {"web"}, "team=c": {"cron"}}


# --- PostgreSQL: the lease and the journal per shard --------------------------------------------


def test_postgresql_leases_are_per_shard_and_exclude_a_daemon_of_everything(postgres: PostgresServer) -> None:
    stores = [HistoryStore(postgres.url) for _ in range(4)]
    leases = [
        Lease(s.engine, sel) for s, sel in zip(stores, (TEAM_A, TEAM_A, TEAM_B, EVERYTHING), strict=True)
    ]
    a, a2, b, whole = leases
    try:
        assert a.try_acquire()
        assert b.try_acquire(), "another shard leads beside it"
        with pytest.raises(LeaseHeld, match="for shard 'team=a'"):
            a2.acquire()
        with pytest.raises(LeaseHeld, match=r"writes to .* \(by a daemon or by --selector shards\)$"):
            whole.acquire()
        assert a.still_held()
        a.release()
        assert a2.try_acquire(), "a's standby takes over"
        a2.release()
        b.release()
        whole.acquire()
        with pytest.raises(LeaseHeld, match="a homeostat daemon without --selector already writes to"):
            b.acquire()
        whole.release()
        assert b.try_acquire()
        b.release()
    finally:
        for lease in leases:
            lease.release()
        for store in stores:
            store.close()


def test_postgresql_journal_marks_only_the_starting_shards_rows(postgres: PostgresServer) -> None:
    record = ActionRecord(
        time=datetime(2026, 12, 1, 12, tzinfo=UTC),
        kind="ECSService",
        name="api",
        action="update_service",
        target="prod/api",
        outcome=Outcome.PENDING,
        before={"desiredCount": 1},
        after={"desiredCount": 2},
        reason="drift",
        error=None,
        revision="pg-shards",
        dry_run=False,
    )
    a, b = HistoryStore(postgres.url, TEAM_A.text), HistoryStore(postgres.url, TEAM_B.text)
    try:
        a.add([record])
        b.add([replace(record, name="web", target="prod/web")])
        (interrupted,) = mark_interrupted(b, structlog.get_logger())
        assert (interrupted.name, interrupted.outcome) == ("web", Outcome.INTERRUPTED)
        rows = {r.name: r.outcome for r in a.query(HistoryQuery(revision="pg-shards"))}
        assert rows == {"api": Outcome.PENDING, "web": Outcome.INTERRUPTED}
    finally:
        a.close()
        b.close()
