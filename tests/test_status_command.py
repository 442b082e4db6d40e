"""`homeostat status` and the daemon's `/`, `/status` and HEAD, in process (issue 12 items 3 and 4).

The health check comes from the plans' facts (what the daemon observed anyway, no extra AWS
call): tasks and rollout per service, cluster status and newest snapshot age, alarms in ALARM;
windows and slots likewise. `status` reads them from a real StatusServer on a free port.
"""

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws
from prometheus_client import CollectorRegistry

from homeostat.desired_state.loading import load_directory
from homeostat.operator import demo_stack
from homeostat.operator.aws_session import BotoClients
from homeostat.operator.demo_stack import CLUSTER, EXAMPLES
from homeostat.operator.http import PAGE_REFRESH_SECONDS, StatusServer
from homeostat.operator.passes import observe_and_diff
from homeostat.operator.status import LoopStatus
from homeostat.operator.status_view import status_url
from homeostat.operator.statuses import ResourceStatus, State
from homeostat.reconcilers.registry import default_reconcilers, kind_table

from .conftest import REGION, free_port, run_main

# A Sunday inside the example window (02:00-06:00 UTC), after the 03:00 snapshot slot.
NOW = datetime(2026, 11, 29, 3, 30, tzinfo=UTC)
IN_ALARM = f"{CLUSTER}-api-5xx-rate"


def observed_status(monkeypatch: pytest.MonkeyPatch) -> LoopStatus:
    """The LoopStatus after one planning pass over the demo's stack (in moto's in-process mock)
    and the example manifests."""
    monkeypatch.setattr(
        demo_stack, "local_client", lambda _endpoint, service: boto3.client(service, region_name=REGION)
    )
    with mock_aws():
        demo_stack.seed("unused", NOW)
        boto3.client("cloudwatch", region_name=REGION).set_alarm_state(
            AlarmName=IN_ALARM, StateValue="ALARM", StateReason="test"
        )
        desired = load_directory(EXAMPLES, kinds=kind_table())
        planned, skipped = observe_and_diff(desired, default_reconcilers(), BotoClients(REGION), NOW)
    statuses = [ResourceStatus(p.kind, p.name, State.IN_SYNC, "observed", NOW, p) for _, _, p in planned]
    status = LoopStatus(resync_seconds=60, revision=desired.revision, valid=True)
    status.end_pass(NOW, [*statuses, *skipped])
    return status


@pytest.fixture(scope="module")
def observed() -> LoopStatus:
    """Observed once per module (seeding the stack and a planning pass take seconds); read only."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
            patch.setenv(name, value)
        patch.setenv("AWS_DEFAULT_REGION", REGION)
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        return observed_status(patch)


@pytest.fixture(scope="module")
def server(observed: LoopStatus) -> Iterator[StatusServer]:
    """One server for the module: every test only reads from it."""
    history = [{"time": "2026-11-29T03:00:00Z", "kind": "ECSService", "name": "api", "target": "t/<b>"}]
    running = StatusServer(("127.0.0.1", 0), CollectorRegistry(), observed, lambda limit: history[:limit])
    running.start()
    try:
        yield running
    finally:
        running.stop()


def listen_of(server: StatusServer) -> str:
    return server.url.removeprefix("http://")


def test_status_carries_the_health_check_windows_and_slots_from_the_observations(
    server: StatusServer,
) -> None:
    document = requests.get(f"{server.url}/status", timeout=10).json()
    health = document["health"]
    api = next(s for s in health["services"] if s["name"] == "api")
    assert api["desired"] == 2
    assert isinstance(api["running"], int)
    assert api["rollout"] is not None
    cluster = health["clusters"][0]
    assert cluster["name"] == CLUSTER
    assert cluster["status"] == "available"
    assert cluster["newestSnapshotAgeSeconds"] == 30 * 60  # today's 03:00 snapshot, at 03:30
    assert cluster["newestSnapshotAge"] == "30m"
    assert health["alarmsInAlarm"] == [IN_ALARM]
    assert document["windows"] == [
        {
            "name": "sunday-maintenance",
            "active": True,
            "start": "2026-11-29T02:00:00Z",
            "end": "2026-11-29T06:00:00Z",
        }
    ]
    assert document["slots"] == [{"name": "aurora-manual", "cluster": CLUSTER, "at": "2026-11-30T03:00:00Z"}]
    facts = {(r["kind"], r["name"]): r["facts"] for r in document["resources"]}
    assert facts[("ECSService", "api")]["taskDefinition"].endswith(f"task-definition/{CLUSTER}-api:41")
    assert all(r["suspension"] is None for r in document["resources"])


def test_status_prints_every_resource_and_the_health_check(
    server: StatusServer, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_main(capsys, "status", "--listen", listen_of(server), "--wide")
    assert result.returncode == 0, result.stderr
    assert "sunday-maintenance" in result.stdout
    assert "aurora-manual" in result.stdout
    assert IN_ALARM in result.stdout
    assert "\x1b[" not in result.stdout  # not a terminal: no colour


def test_status_json_is_the_daemon_document(server: StatusServer, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_main(capsys, "status", "--json", "--listen", listen_of(server))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == server.loop_status.to_json()


def test_status_without_a_daemon_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    listen = f"127.0.0.1:{free_port()}"
    result = run_main(capsys, "status", "--listen", listen)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert f"no homeostat daemon answers on http://{listen}/status" in lines[0]


def test_a_wildcard_listen_address_is_asked_on_loopback() -> None:
    assert status_url("0.0.0.0:9464") == "http://127.0.0.1:9464/status"
    assert status_url("[::1]:9464") == "http://[::1]:9464/status"


def request(server: StatusServer, path: str, method: str = "GET") -> requests.Response:
    return requests.request(method, f"{server.url}{path}", timeout=10)


def test_the_page_is_served_at_the_root_with_the_history_rows(server: StatusServer) -> None:
    response = request(server, "/")
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    page = response.text
    assert f'<meta http-equiv="refresh" content="{PAGE_REFRESH_SECONDS}">' in page
    assert "t/&lt;b&gt;" in page  # the history row's target, escaped
    assert "sunday-maintenance" in page


def raw_head(server: StatusServer, path: str) -> bytes:
    """Everything the server sends for a HEAD, read off the socket until it closes (HTTP/1.0)."""
    host, port = server.server_address[:2]
    with socket.create_connection((str(host), int(port)), timeout=10) as sock:
        sock.sendall(f"HEAD {path} HTTP/1.0\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("path", ["/", "/metrics", "/healthz", "/readyz", "/status"])
def test_every_endpoint_answers_head_like_get_without_a_body(server: StatusServer, path: str) -> None:
    head = request(server, path, "HEAD")
    get = request(server, path)
    body = get.content
    assert head.status_code == get.status_code == 200
    assert raw_head(server, path).split(b"\r\n\r\n", 1)[1] == b""  # nothing after the headers
    assert head.headers["Content-Type"] == get.headers["Content-Type"]
    assert head.headers["Content-Length"].isdigit()
    assert len(body) > 0 or path == "/metrics"  # an empty registry has no samples


def test_the_page_shows_no_history_when_the_daemon_has_none() -> None:
    server = StatusServer(("127.0.0.1", 0), CollectorRegistry(), LoopStatus(resync_seconds=60))
    server.start()
    try:
        assert "No history rows yet." in request(server, "/").text
    finally:
        server.stop()


def test_one_health_row_per_cluster_whichever_kinds_name_it() -> None:
    """A SnapshotRetention (snapshot age) and an AuroraCluster (status) of one cluster make one row."""
    from homeostat.desired_state.identifiers import Kind
    from homeostat.operator.overview import health
    from homeostat.reconcilers.actions import Plan

    def observed(kind: Kind, name: str, **facts: Any) -> ResourceStatus:
        return ResourceStatus(kind, name, State.IN_SYNC, "", NOW, Plan(kind, name, facts=facts))

    rows = health(
        [
            observed(
                Kind("SnapshotRetention"),
                "a",
                cluster="Prod",
                clusterStatus=None,
                newestSnapshotAgeSeconds=7200,
            ),
            observed(
                Kind("SnapshotRetention"),
                "b",
                cluster="prod",
                clusterStatus=None,
                newestSnapshotAgeSeconds=60,
            ),
            observed(Kind("AuroraCluster"), "c", cluster="prod", clusterStatus="modifying"),
        ]
    )["clusters"]
    assert rows == [
        {"name": "Prod", "status": "modifying", "newestSnapshotAgeSeconds": 60, "newestSnapshotAge": "1m"}
    ]


def test_watch_redraws_until_ctrl_c_which_exits_130(
    server: StatusServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from homeostat.operator import status_view

    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(status_view.time, "sleep", sleep)
    result = run_main(capsys, "status", "--watch", "3", "--listen", listen_of(server))
    assert result.returncode == 130
    assert sleeps == [3, 3]  # drawn twice, asked a third time, then Ctrl-C
    assert "sunday-maintenance" in result.stdout
    assert "Traceback" not in result.stderr


def test_watch_shows_a_daemon_that_stops_answering_and_keeps_asking(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from homeostat.operator import status_view

    def sleep(_seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(status_view.time, "sleep", sleep)
    listen = f"127.0.0.1:{free_port()}"
    result = run_main(capsys, "status", "--watch", "1", "--listen", listen)
    assert result.returncode == 130
    assert "no homeostat daemon answers" in result.stdout
