"""The daemon end to end: the real CLI as a subprocess against moto's server on 127.0.0.1."""

import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import MotoServer, run_cli
from tests.daemon_helpers import (
    CLUSTER,
    DaemonProcess,
    desired_count,
    seed_services,
    service_manifest,
    wait_for,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def daemons() -> Iterator[list[DaemonProcess]]:
    started: list[DaemonProcess] = []
    yield started
    for daemon in started:
        daemon.kill()


def start(
    daemons: list[DaemonProcess], moto: MotoServer, tmp_path: Path, *extra: str, **kwargs: object
) -> DaemonProcess:
    daemon = DaemonProcess(
        moto, tmp_path / "desired", f"sqlite:///{tmp_path / 'history.db'}", *extra, log_dir=tmp_path, **kwargs
    )  # type: ignore[arg-type]
    daemons.append(daemon)
    return daemon


def write(desired: Path, text: str, name: str = "services.yaml") -> None:
    desired.mkdir(exist_ok=True)
    (desired / name).write_text(text)


def test_ready_after_first_pass_and_scaled_down_service_restored_within_a_resync(
    moto_server: MotoServer, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    """/readyz turns 200 after the first pass; a service scaled down by hand is back within one resync."""
    ecs = seed_services(moto_server, {"api": 1, "web": 2})
    write(tmp_path / "desired", service_manifest("api", 3) + "---\n" + service_manifest("web", 2))
    daemon = start(daemons, moto_server, tmp_path, "--resync", "2")
    daemon.wait_ready()
    assert desired_count(ecs, "api") == 3
    status = daemon.get("/status").json()
    assert {(r["kind"], r["name"], r["inSync"]) for r in status["resources"]} == {
        ("ECSService", "api", True),
        ("ECSService", "web", True),
    }
    ecs.update_service(cluster=CLUSTER, service="api", desiredCount=0)
    scaled_at = time.monotonic()
    wait_for(lambda: desired_count(ecs, "api") == 3, timeout=15, what="api restored to 3")
    # Restored by the next resync (2 s) plus a pass; the bound is generous for a noisy machine.
    assert time.monotonic() - scaled_at < 12
    assert daemon.get("/healthz").status_code == 200


def test_edited_manifest_applied_without_waiting_for_resync(
    moto_server: MotoServer, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    """With --resync 300, an edited manifest is applied by the watcher, not the timer."""
    ecs = seed_services(moto_server, {"api": 2})
    write(tmp_path / "desired", service_manifest("api", 2))
    daemon = start(daemons, moto_server, tmp_path, "--resync", "300")
    daemon.wait_ready()
    write(tmp_path / "desired", service_manifest("api", 5))
    edited_at = time.monotonic()
    wait_for(lambda: desired_count(ecs, "api") == 5, timeout=20, what="edit applied")
    assert time.monotonic() - edited_at < 10  # the contract asks for 2 s; 10 s is the noisy-machine bound
    passes = daemon.events("pass_started")
    assert any("desired state changed" in p["reasons"] for p in passes)


def test_rejected_edit_keeps_previous_state_enforced(
    moto_server: MotoServer, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    """An invalid edit is rejected whole: the last valid revision keeps being enforced and is reported."""
    ecs = seed_services(moto_server, {"api": 1})
    write(tmp_path / "desired", service_manifest("api", 3))
    daemon = start(daemons, moto_server, tmp_path, "--resync", "1")
    daemon.wait_ready()
    good = daemon.get("/status").json()["revision"]
    write(tmp_path / "desired", service_manifest("api", 9) + "  bogus: true\n")
    wait_for(lambda: daemon.get("/status").json()["rejectedRevision"], timeout=10, what="rejection")
    ecs.update_service(cluster=CLUSTER, service="api", desiredCount=0)
    wait_for(lambda: desired_count(ecs, "api") == 3, timeout=15, what="old state enforced")
    status = daemon.get("/status").json()
    assert status["revision"] == good
    assert any("bogus" in e for e in status["rejectedErrors"])
    assert "homeostat_desired_state_valid 0.0" in daemon.get("/metrics").text
    assert daemon.get("/readyz").status_code == 200


def test_sigterm_finishes_the_action_in_flight_records_it_and_exits_zero(
    moto_server: MotoServer, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    """SIGTERM mid-pass: every logged action is in the history, the rest is left for later, exit 0."""
    names = {f"svc-{i:02d}": 1 for i in range(40)}
    seed_services(moto_server, names)
    write(tmp_path / "desired", "---\n".join(service_manifest(n, 2) for n in names))
    daemon = start(daemons, moto_server, tmp_path, "--resync", "300")
    wait_for(lambda: daemon.events("action"), timeout=30, interval=0.005, what="first action")
    code = daemon.terminate()
    assert code == 0
    logged = {(e["name"], e["outcome"]) for e in daemon.events("action")}
    history = run_cli(
        "history", "--json", "--limit", "1000", "--history", f"sqlite:///{tmp_path / 'history.db'}"
    )
    rows = {(json.loads(line)["name"], json.loads(line)["outcome"]) for line in history.stdout.splitlines()}
    assert logged
    assert logged == rows
    assert all(outcome == "applied" for _, outcome in rows)
    assert daemon.events("daemon_stopped")


def test_second_daemon_on_the_same_database_stands_by_and_takes_over_after_sigkill(
    moto_server: MotoServer, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    """Single writer: a second daemon waits as a standby (live, not ready, leader 0, no pass)
    and `run --once` is refused; after SIGKILL of the first the standby leads within 15 s and
    enforces the desired state."""
    ecs = seed_services(moto_server, {"api": 1})
    write(tmp_path / "desired", service_manifest("api", 1))
    first = start(daemons, moto_server, tmp_path, "--resync", "300")
    first.wait_ready()
    second = start(daemons, moto_server, tmp_path, "--resync", "300")
    wait_for(
        lambda: second.process.poll() is None and second.get("/readyz").text == "standby\n",
        30,
        what=f"/readyz standby; log: {second.log_text()[-2000:]}",
    )
    assert second.get("/readyz").status_code == 503
    assert second.get("/healthz").status_code == 200
    assert "homeostat_leader 0.0" in second.get("/metrics").text
    assert "homeostat_leader 1.0" in first.get("/metrics").text
    once = run_cli(
        "run",
        "--once",
        "--desired-state",
        str(tmp_path / "desired"),
        "--history",
        f"sqlite:///{tmp_path / 'history.db'}",
        env=moto_server.env(),
    )
    assert once.returncode == 1
    assert "another homeostat daemon already writes to" in once.stderr
    write(tmp_path / "desired", service_manifest("api", 2))  # only a leader may enforce it
    wait_for(lambda: desired_count(ecs, "api") == 2, 30, what="the leader to scale api")
    assert not second.events("pass_started")
    ecs.update_service(cluster=CLUSTER, service="api", desiredCount=1)
    first.kill()
    # The lease is polled every second (tests/test_standby.py); 30 s allows for a loaded machine.
    wait_for(lambda: second.events("standby_took_over"), 30, what="the standby to take the lease")
    second.wait_ready(timeout=60)
    assert second.get("/healthz").status_code == 200
    assert "homeostat_leader 1.0" in second.get("/metrics").text
    wait_for(lambda: desired_count(ecs, "api") == 2, 30, what="the new leader to restore api")
    assert "Traceback" not in second.log_text()
    assert second.terminate() == 0
    third = start(daemons, moto_server, tmp_path, "--resync", "300")
    third.wait_ready()
    assert third.terminate() == 0


def test_failing_resource_backs_off_while_others_are_reconciled_and_resets_on_success(
    moto_server: MotoServer, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    """A service in a missing cluster backs off; the healthy one is fixed on time; success resets it."""
    ecs = seed_services(moto_server, {"api": 1})
    write(
        tmp_path / "desired",
        service_manifest("api", 2) + "---\n" + service_manifest("ghost", 1, cluster="later"),
    )
    daemon = start(daemons, moto_server, tmp_path, "--resync", "1")
    daemon.wait_ready()
    assert desired_count(ecs, "api") == 2
    backoffs = wait_for(
        lambda: (
            [e for e in daemon.events("resource_backoff") if e["name"] == "ghost"][2:]
            and [e for e in daemon.events("resource_backoff") if e["name"] == "ghost"]
        ),
        timeout=30,
        what="three backoffs of ghost",
    )
    assert [e["failures"] for e in backoffs[:3]] == [1, 2, 3]
    ecs.update_service(cluster=CLUSTER, service="api", desiredCount=0)
    wait_for(lambda: desired_count(ecs, "api") == 2, timeout=10, what="api fixed while ghost backs off")
    seed_services(moto_server, {"ghost": 0}, cluster="later")
    wait_for(lambda: desired_count(ecs, "ghost", cluster="later") == 1, timeout=30, what="ghost reconciled")
    # /status says so once the pass that fixed it has finished (not at the instant AWS changed).
    wait_for(
        lambda: next(r for r in daemon.get("/status").json()["resources"] if r["name"] == "ghost")["inSync"],
        timeout=30,
        what="ghost in sync in /status",
    )
    count = len([e for e in daemon.events("resource_backoff") if e["name"] == "ghost"])
    passes = len(daemon.events("pass_finished"))
    wait_for(  # several resyncs: a reset backoff produces no new backoff events
        lambda: len(daemon.events("pass_finished")) >= passes + 3, timeout=60, what="three more passes"
    )
    assert len([e for e in daemon.events("resource_backoff") if e["name"] == "ghost"]) == count


def test_wedged_loop_fails_healthz(
    moto_server: MotoServer, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    """A pass stuck on an AWS endpoint that never answers turns /healthz to 503 after 3 resync periods."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept_and_hold() -> None:
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(silent.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept_and_hold, daemon=True).start()
    try:
        write(tmp_path / "desired", service_manifest("api", 1))
        env = moto_server.env(AWS_ENDPOINT_URL=f"http://127.0.0.1:{silent.getsockname()[1]}")
        daemon = start(daemons, moto_server, tmp_path, "--resync", "1", env=env)
        wait_for(lambda: daemon.get("/healthz").status_code == 503, timeout=20, what="/healthz 503")
        assert "pass running for" in daemon.get("/healthz").text
        assert daemon.get("/readyz").status_code == 503
    finally:
        stop.set()
        for conn in accepted:
            conn.close()
        silent.close()


def test_metrics_carry_the_contract_names_and_labels(
    moto_server: MotoServer, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    """/metrics exposes the contract's metrics with their labels after a pass that fixed drift."""
    seed_services(moto_server, {"api": 1})
    write(tmp_path / "desired", service_manifest("api", 2))
    daemon = start(daemons, moto_server, tmp_path, "--resync", "300")
    daemon.wait_ready()
    text = daemon.get("/metrics").text
    for sample in (
        'homeostat_reconcile_total{kind="ECSService",result="success"}',
        'homeostat_reconcile_duration_seconds_count{kind="ECSService"}',
        'homeostat_resource_in_sync{kind="ECSService",name="api"} 1.0',
        'homeostat_actions_total{action="update_service",kind="ECSService",outcome="applied"} 1.0',
        'homeostat_aws_api_calls_total{operation="DescribeServices",result="ok",service="ecs"}',
        'homeostat_aws_api_calls_total{operation="UpdateService",result="ok",service="ecs"} 1.0',
        "homeostat_desired_state_valid 1.0",
        'homeostat_desired_state_loads_total{result="valid"}',
        "homeostat_desired_state_revision_info{revision=",
        "homeostat_last_pass_timestamp_seconds ",
        'homeostat_build_info{version="',
    ):
        assert sample in text, sample
    assert "# TYPE homeostat_maintenance_window_active gauge" in text


def test_ctrl_c_during_plan_exits_130_not_in_sync(tmp_path: Path, moto_server: MotoServer) -> None:
    """An interrupted `plan` never exits 0 (which would read as "in sync")."""
    import signal
    import subprocess
    import sys

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        write(tmp_path / "desired", service_manifest("api", 1))
        env = moto_server.env(AWS_ENDPOINT_URL=f"http://127.0.0.1:{silent.getsockname()[1]}")
        # The child starts as from a terminal, with SIGINT at its default. A test run started in
        # the background by a non-interactive shell (`make test &`, nohup) has SIGINT ignored,
        # every child would inherit that across exec, and Python then installs no Ctrl-C handler.
        inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "homeostat", "plan", "--desired-state", str(tmp_path / "desired")],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        finally:
            signal.signal(signal.SIGINT, inherited)
        silent.settimeout(120)
        connection, _ = silent.accept()  # the plan is blocked on the AWS endpoint that never answers
        try:
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()  # not left running into later tests
            process.communicate()
            raise
        finally:
            connection.close()
        assert process.returncode == 130, stderr
        assert b"Traceback" not in stderr
    finally:
        silent.close()


def test_plan_into_a_closed_pipe_keeps_the_drift_exit_code(tmp_path: Path, moto_server: MotoServer) -> None:
    """`homeostat plan | head -1` with drift: the closed pipe is neither success nor a traceback."""
    import os
    import subprocess
    import sys

    seed_services(moto_server, {"api": 1})
    write(tmp_path / "desired", service_manifest("api", 3))
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written: every write is EPIPE
    try:
        result = subprocess.run(
            [sys.executable, "-m", "homeostat", "plan", "--desired-state", str(tmp_path / "desired")],
            env=moto_server.env(),
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert result.returncode == 2, result.stderr
    assert b"Traceback" not in result.stderr
    assert b"BrokenPipe" not in result.stderr


def test_sigterm_during_a_long_observe_stops_at_the_next_aws_read(
    moto_server: MotoServer, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    """SIGTERM while observe reads are in flight: those end, no further AWS call, exit 0, and
    nothing is recorded as failed or backed off (no wall clock: every read is held by a gate).
    100 services are 10 DescribeServices batches and 2 DescribeScalableTargets batches; at
    most 8 + 2 are in flight at once (the observe's read workers), so the last two batches
    can start only once a held read has returned, which is after the signal."""
    from homeostat.operator.local_aws import LocalAws

    names = {f"svc-{i:03d}": 1 for i in range(100)}
    seed_services(moto_server, names)
    write(tmp_path / "desired", "---\n".join(service_manifest(n, 2) for n in names))
    first_read, gate = threading.Event(), threading.Event()
    seen: list[str] = []

    def hold_every_read(_service: str, operation: str, user_agent: str) -> None:
        if "homeostat/" not in user_agent:
            return
        seen.append(operation)
        first_read.set()
        gate.wait(60)

    slow = LocalAws(on_request=hold_every_read).start()  # same in-process moto backends
    try:
        daemon = start(daemons, MotoServer(slow.url, slow), tmp_path, "--resync", "300")
        assert first_read.wait(60), daemon.log_text()[-2000:]
        daemon.process.send_signal(signal.SIGTERM)
        wait_for(lambda: daemon.events("shutting_down"), timeout=30, what="the signal handled")
        gate.set()
        assert daemon.process.wait(timeout=60) == 0
    finally:
        gate.set()
        slow.stop()
    assert 1 <= len(seen) <= 10, seen  # only reads in flight at the signal: 12 were due
    assert daemon.events("daemon_stopped")
    assert not daemon.events("action")
    assert not daemon.events("resource_backoff")
    assert not daemon.events("pass_failed")
