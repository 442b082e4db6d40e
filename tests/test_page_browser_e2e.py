"""The page at `/` in a real browser: headless Chromium loads it from a running daemon.

The daemon runs against moto's server with a drifted service; the test waits (through /status) until
the drift is fixed, then lets Chromium render the page, reads the DOM Chromium built and takes a
screenshot. Chromium runs with its background networking off (this machine has no network) and a
fresh profile; Debian's package is installed by tests/ensure-chromium.sh (`make test` runs it).
"""

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import MotoServer
from tests.daemon_helpers import DaemonProcess, seed_services, service_manifest
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # the tests run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(
            "Chromium is not installed: run tests/ensure-chromium.sh (`make test` does)", pytrace=False
        )
    return found


def browse(url: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_page_renders_resources_and_history_in_a_real_browser(
    moto_server: MotoServer, tmp_path: Path
) -> None:
    ecs = seed_services(moto_server, {"api": 2})
    desired = tmp_path / "desired"
    desired.mkdir()
    (desired / "api.yaml").write_text(service_manifest("api", 4))
    daemon = DaemonProcess(moto_server, desired, f"sqlite:///{tmp_path / 'h.db'}", log_dir=tmp_path)
    try:
        daemon.wait_ready(timeout=60)
        wait_for(
            lambda: (
                ecs.describe_services(cluster="prod", services=["api"])["services"][0]["desiredCount"] == 4
            ),
            60,
            what="api scaled to 4",
        )
        dom = browse(daemon.url + "/", tmp_path / "profile-dom", "--dump-dom")
        assert dom.returncode == 0, dom.stderr[-2000:]
        html = dom.stdout
        assert "<h1>homeostat</h1>" in html
        assert ">api<" in html  # the resource row
        assert "update_service" in html  # the history row of the fix
        assert "desiredCount: 2 -&gt; 4" in html
        assert "<script" not in html
        shot = tmp_path / "page.png"
        taken = browse(daemon.url + "/", tmp_path / "profile-shot", f"--screenshot={shot}")
        assert taken.returncode == 0, taken.stderr[-2000:]
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert shot.stat().st_size > 10_000  # a rendered page, not a blank one
    finally:
        daemon.terminate()
