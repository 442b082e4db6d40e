"""Hostile inputs in the desired-state directory of a running daemon (the real CLI against moto's server).

The daemon starts on a valid directory and fixes a drifted service; then one
hostile thing is added. Each must be rejected with a located error while the
last valid revision stays in force: drift made in AWS afterwards is still
fixed, /status says valid false and names the file, the gauge
homeostat_desired_state_valid is 0, the history has a reject_revision row and
/healthz stays 200.

Unreadable directory: the tests run as root, for whom chmod 000 changes
nothing, so that daemon runs under `setpriv` with CAP_DAC_OVERRIDE and
CAP_DAC_READ_SEARCH dropped from its bounding set: it cannot list a 000
directory, as an ordinary user could not.
"""

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import MotoServer, run_cli
from tests.daemon_helpers import DaemonProcess, desired_count, seed_services, service_manifest
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
VALID_HEAD = b"apiVersion: homeostat/v1\nkind: ECSService\nmetadata:\n  name: other\n"
# Valid but for its size: a manifest followed by a comment line that takes it past 10 MiB.
BIG = service_manifest("other", 1).encode() + b"# " + b"x" * (10 * MIB) + b"\n"
ALIAS_BOMB = "\n".join(
    ["a: &a [x, x, x, x, x, x, x, x, x]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(8)]
)


def write(name: str, data: bytes) -> Callable[[Path], str]:
    def make(directory: Path) -> str:
        (directory / name).write_bytes(data)
        return name

    return make


def unreadable_directory(directory: Path) -> str:
    secret = directory / "secret"
    secret.mkdir()
    (secret / "hidden.yaml").write_text(service_manifest("hidden", 1))
    secret.chmod(0)
    return "secret"


def dangling_symlink(directory: Path) -> str:
    (directory / "gone.yaml").symlink_to(directory / "missing.yaml")
    return "gone.yaml"


def symlink_loop(directory: Path) -> str:
    (directory / "loop.yaml").symlink_to("loop.yaml")
    return "loop.yaml"


CASES = [
    pytest.param(write("bad.yaml", VALID_HEAD + b"spec: {cluster: \xff\xfe}\n"), id="non-utf8"),
    pytest.param(write("nul.yaml", VALID_HEAD + b"spec:\x00\n"), id="nul-byte"),
    pytest.param(write("blob.yaml", bytes(range(256)) * 64), id="binary"),
    pytest.param(unreadable_directory, id="unreadable-directory"),
    pytest.param(dangling_symlink, id="dangling-symlink"),
    pytest.param(symlink_loop, id="symlink-loop"),
    pytest.param(write("big.yaml", BIG), id="over-10-MiB"),
    pytest.param(write("tag.yaml", b"!!python/object/apply:os.system [echo owned]\n"), id="yaml-tag"),
    pytest.param(write("bomb.yaml", ALIAS_BOMB.encode()), id="alias-bomb"),
]


@pytest.fixture
def desired(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "desired"
    directory.mkdir()
    yield directory
    for path in directory.rglob("*"):  # let pytest remove what a case made unreadable
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o700)


def passes_done(daemon: DaemonProcess) -> int:
    return len(daemon.events("pass_finished")) + len(daemon.events("pass_failed"))


@pytest.mark.parametrize("hostile", CASES)
def test_a_hostile_input_is_rejected_and_the_last_valid_revision_stays_in_force(
    moto_server: MotoServer, tmp_path: Path, desired: Path, hostile: Callable[[Path], str]
) -> None:
    ecs = seed_services(moto_server, {"api": 1})
    (desired / "services.yaml").write_text(service_manifest("api", 3))
    history = f"sqlite:///{tmp_path / 'history.db'}"
    prefix: tuple[str, ...] = ()
    if hostile is unreadable_directory and os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: chmod 000 cannot make a directory unreadable")
        prefix = (setpriv, "--bounding-set=-dac_override,-dac_read_search")
    daemon = DaemonProcess(moto_server, desired, history, "--resync", "2", log_dir=tmp_path, prefix=prefix)
    try:
        daemon.wait_ready(timeout=60)
        wait_for(lambda: desired_count(ecs, "api") == 3, timeout=60, what="the valid revision enforced")
        before = passes_done(daemon)
        located = hostile(desired)

        # Every pass reloads the directory first: two passes after the change have seen it.
        wait_for(
            lambda: daemon.get("/status").json()["valid"] is False or passes_done(daemon) >= before + 2,
            timeout=90,
            what=f"the daemon to load the directory with {located}",
        )
        status = daemon.get("/status").json()
        assert status["valid"] is False, status
        assert any(located in error for error in status["rejectedErrors"]), status["rejectedErrors"]
        assert "homeostat_desired_state_valid 0.0" in daemon.get("/metrics").text.splitlines()
        ecs.update_service(cluster="prod", service="api", desiredCount=1)  # drift made in AWS
        wait_for(lambda: desired_count(ecs, "api") == 3, timeout=60, what="drift fixed after the rejection")
        assert daemon.get("/healthz").status_code == 200
        assert daemon.get("/status").json()["valid"] is False
    finally:
        assert daemon.terminate(timeout=60) == 0, daemon.log_text()[-2000:]
    result = run_cli("history", "--json", "--history", history, env=moto_server.env())
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    (rejected,) = [r for r in rows if r["action"] == "reject_revision"]
    assert located in rejected["error"], rejected
