"""`homeostat status` on a terminal: the /status document as tables fitted to the width, coloured
only on a terminal and never under NO_COLOR."""

import io
import re
from typing import Any

from rich.console import Console

from homeostat.operator.console import print_status


def document(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "revision": "abc123",
        "valid": True,
        "rejectedRevision": None,
        "rejectedErrors": [],
        "lastPass": "2026-12-01T08:00:00Z",
        "resources": [
            {
                "kind": "ECSService",
                "name": "api",
                "state": "Fixed",
                "message": "fixed: desiredCount 2 -> 4",
                "lastReconcile": "2026-12-01T08:00:00Z",
            },
            {
                "kind": "ECSService",
                "name": "web",
                "state": "Suspended",
                "message": "suspended in the manifest",
                "lastReconcile": None,
                "suspension": {"until": "2026-12-02T09:00:00Z", "reason": "INC-4411"},
            },
        ],
    }
    base.update(extra)
    return base


def rendered(doc: dict[str, Any], *, width: int = 100, terminal: bool = False, wide: bool = False) -> str:
    out = io.StringIO()
    console = Console(
        file=out, width=width, force_terminal=terminal, color_system="standard" if terminal else None
    )
    print_status(doc, console, wide=wide)
    return out.getvalue()


def test_every_resource_is_a_row_with_kind_name_state_since_and_message() -> None:
    text = rendered(document())
    assert "KIND" in text
    assert "MESSAGE" in text
    assert "api" in text
    assert "Fixed" in text
    assert "fixed: desiredCount 2 -> 4" in text


def test_a_held_resource_is_listed_again_with_the_reason_and_expiry_of_its_hold() -> None:
    text = rendered(document(), width=160)
    held = text.split("Held (suspended, fighting)", 1)[1]
    assert "web" in held
    assert "INC-4411" in held
    assert "2026-12-02T09:00:00Z" in held


def test_lines_fit_the_terminal_width() -> None:
    long = document(
        resources=[
            {
                "kind": "AlarmActions",
                "name": "x" * 30,
                "state": "Error",
                "message": "listing alarms failed: " + "Throttling " * 30,
                "lastReconcile": None,
            }
        ]
    )
    assert all(len(line) <= 60 for line in rendered(long, width=60).splitlines())


def colours(text: str) -> list[str]:
    """The SGR colour codes in `text` (bold and the like are not colour: NO_COLOR allows them)."""
    return re.findall(r"\x1b\[(?:[0-9;]*;)?(?:3[0-9]|9[0-7])m", text)


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch: Any) -> None:
    assert colours(rendered(document(), terminal=True))
    assert "\x1b[" not in rendered(document(), terminal=False)
    monkeypatch.setenv("NO_COLOR", "1")
    assert colours(rendered(document(), terminal=True)) == []


def test_an_invalid_directory_says_which_revision_was_rejected_and_which_stays_in_force() -> None:
    text = rendered(
        document(valid=False, rejectedRevision="bad1", rejectedErrors=["a.yaml:3: kind: unknown"])
    )
    assert "bad1 rejected; abc123 stays in force" in text
    assert "a.yaml:3: kind: unknown" in text


def test_the_morning_health_check_shows_tasks_clusters_and_alarms_in_alarm() -> None:
    health = {
        "services": [{"name": "api", "running": 3, "desired": 4, "rollout": "IN_PROGRESS"}],
        "clusters": [{"name": "omnirapeutic-production", "status": "available", "newestSnapshotAge": "5h"}],
        "alarmsInAlarm": ["omnirapeutic-production-api-5xx-rate"],
    }
    text = rendered(document(health=health), width=120)
    assert "IN_PROGRESS" in text
    assert "omnirapeutic-production" in text
    assert "5h" in text
    assert "omnirapeutic-production-api-5xx-rate" in text


def test_windows_and_slots_are_shown_when_the_daemon_reports_them() -> None:
    text = rendered(
        document(
            windows=[{"name": "sunday", "active": False, "start": "S1", "end": "E1"}],
            slots=[{"name": "aurora-manual", "at": "T1"}],
        ),
        width=120,
    )
    assert "sunday" in text
    assert "S1" in text
    assert "aurora-manual" in text
    assert "T1" in text


def test_a_region_column_appears_only_when_the_resources_span_several_regions() -> None:
    one = rendered(document(), width=160)
    assert "REGION" not in one
    resources = [
        {**document()["resources"][0], "region": "eu-west-1"},
        {**document()["resources"][1], "region": "us-east-1"},
    ]
    two = rendered(document(resources=resources), width=160)
    header = next(line for line in two.splitlines() if "KIND" in line)
    assert header.split()[:4] == ["KIND", "NAME", "REGION", "STATE"]
    api = next(line for line in two.splitlines() if line.split()[:2] == ["ECSService", "api"])
    assert api.split()[2] == "eu-west-1"
