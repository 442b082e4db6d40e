"""The page at `/`: a pure rendering of /status and the newest history rows, escaped, no JavaScript."""

from html.parser import HTMLParser
from typing import Any

from homeostat.operator.page import PAGE_HISTORY_ROWS, render_page
from homeostat.operator.values import change_text


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed(page: str) -> _Collect:
    collector = _Collect()
    collector.feed(page)
    return collector


def status(**extra: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "revision": "abc123",
        "valid": True,
        "rejectedRevision": None,
        "rejectedErrors": [],
        "passes": 3,
        "lastPass": "2026-12-01T08:00:00Z",
        "resources": [
            {
                "kind": "ECSService",
                "name": "api",
                "state": "Fixed",
                "message": "fixed: drift",
                "lastReconcile": "2026-12-01T08:00:00Z",
                "inSync": True,
            },
        ],
    }
    document.update(extra)
    return document


def row(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "time": "2026-12-01T08:00:00Z",
        "kind": "ECSService",
        "name": "api",
        "action": "update_service",
        "target": "prod/api",
        "outcome": "applied",
        "before": {"desiredCount": 2},
        "after": {"desiredCount": 4},
        "reason": "drift",
        "error": None,
        "revision": "abc123",
        "dry_run": False,
    }
    base.update(extra)
    return base


def test_names_reasons_and_errors_from_manifests_and_aws_are_escaped() -> None:
    """A hostile alarm name or error text is shown as text: no element is injected."""
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    page = render_page(
        status(valid=False, rejectedRevision="bad1", rejectedErrors=[f"a.yaml:3: {hostile}"]),
        [row(target=hostile, reason=hostile)],
        refresh_seconds=10,
    )
    seen = parsed(page)
    assert "script" not in seen.tags
    assert "img" not in seen.tags
    assert any(hostile in t for t in seen.text)


def test_the_page_refreshes_itself_and_needs_no_javascript() -> None:
    page = render_page(status(), [], refresh_seconds=7)
    assert '<meta http-equiv="refresh" content="7">' in page
    assert "<script" not in page


def test_a_rejected_revision_is_shown_with_its_errors_and_the_revision_in_force() -> None:
    page = render_page(
        status(valid=False, rejectedRevision="bad1", rejectedErrors=["a.yaml:3: spec.desiredCount: bad"]),
        [],
        refresh_seconds=10,
    )
    text = "".join(parsed(page).text)
    assert "Desired state invalid" in text
    assert "bad1" in text
    assert "a.yaml:3: spec.desiredCount: bad" in text
    assert "abc123" in text


def test_history_shows_target_reason_and_at_most_the_last_fifty_rows() -> None:
    rows = [row(name=f"svc-{i}") for i in range(PAGE_HISTORY_ROWS + 10)]
    text = "".join(parsed(render_page(status(), rows, refresh_seconds=10)).text)
    assert "prod/api" in text
    assert f"ECSService/svc-{PAGE_HISTORY_ROWS - 1}" in text
    assert f"ECSService/svc-{PAGE_HISTORY_ROWS}" not in text


def test_suspended_and_fighting_resources_are_listed_as_held_with_the_reason_of_a_bounded_hold() -> None:
    resources = [
        {
            "kind": "ECSService",
            "name": "web",
            "state": "Suspended",
            "message": "suspended in the manifest",
            "lastReconcile": None,
            "suspension": {"until": "2026-12-02T09:00:00Z", "reason": "INC-4411"},
        },
        {"kind": "ECSService", "name": "api", "state": "InSync", "message": "in sync", "lastReconcile": None},
        {
            "kind": "ECSService",
            "name": "worker",
            "state": "Fighting",
            "message": "Fighting: desiredCount of prod/worker was corrected 3 times and changed back",
            "lastReconcile": None,
        },
    ]
    page = render_page(status(resources=resources), [], refresh_seconds=10)
    held = page.split("Held: suspended and fighting", 1)[1].split("<h2>", 1)[0]
    assert ">worker<" in held
    assert "corrected 3 times and changed back" in held
    assert "web" in held
    assert "INC-4411" in held
    assert "2026-12-02T09:00:00Z" in held
    assert ">api<" not in held


def test_windows_and_slots_are_listed_when_the_status_carries_them() -> None:
    page = render_page(
        status(
            windows=[
                {
                    "name": "sunday",
                    "active": True,
                    "start": "2026-12-06T02:00:00Z",
                    "end": "2026-12-06T06:00:00Z",
                }
            ],
            slots=[{"name": "aurora-manual", "at": "2026-12-02T03:00:00Z"}],
        ),
        [],
        refresh_seconds=10,
    )
    text = "".join(parsed(page).text)
    assert "sunday" in text
    assert "active" in text
    assert "2026-12-02T03:00:00Z" in text


def test_values_print_as_json_and_a_value_that_goes_away_is_deleted() -> None:
    assert change_text({"actionsEnabled": True}, {"actionsEnabled": False}) == "actionsEnabled: true -> false"
    assert change_text({"snapshot": "s-1"}, {"snapshot": None}) == "snapshot: s-1 deleted"
    assert change_text({}, {"snapshot": "s-2"}) == "snapshot: null -> s-2"


def test_the_morning_health_check_is_on_the_page() -> None:
    health = {
        "services": [{"name": "api", "running": 3, "desired": 4, "rollout": "IN_PROGRESS"}],
        "clusters": [{"name": "omnirapeutic-production", "status": "available", "newestSnapshotAge": "5h"}],
        "alarmsInAlarm": ["<b>prod-api-5xx-rate</b>"],
    }
    page = render_page(status(health=health), [], refresh_seconds=10)
    seen = parsed(page)
    text = "".join(seen.text)
    assert "IN_PROGRESS" in text
    assert "omnirapeutic-production" in text
    assert "5h" in text
    assert "<b>prod-api-5xx-rate</b>" in text  # an alarm name is text, not markup
    assert "b" not in seen.tags


def test_instants_are_shown_to_the_second() -> None:
    page = render_page(status(lastPass="2026-12-01T08:00:31.951184Z"), [], refresh_seconds=10)
    assert "2026-12-01T08:00:31Z" in page
    assert "951184" not in page


def _headers(page: str, section: str) -> list[str]:
    table = page.split(f"<h2>{section}</h2>", 1)[1].split("</thead>", 1)[0]
    return [cell.split("</th>", 1)[0] for cell in table.split("<th>")[1:]]


def test_a_region_column_appears_only_when_the_resources_span_several_regions() -> None:
    """One region: the tables read as they always did. Two: each row says where it runs."""
    one = render_page(status(), [], refresh_seconds=10)
    assert _headers(one, "Resources") == ["Kind", "Name", "State", "Since", "Message"]
    resources = [
        {"kind": "ECSService", "name": "api", "region": "eu-west-1", "state": "InSync", "message": ""},
        {"kind": "ECSService", "name": "web", "region": "us-east-1", "state": "Suspended", "message": ""},
    ]
    two = render_page(status(resources=resources), [], refresh_seconds=10)
    for section in ("Resources", "Held: suspended and fighting"):
        assert _headers(two, section) == ["Kind", "Name", "Region", "State", "Since", "Message"]
    assert '>api</td><td class="nw">eu-west-1<' in two
    held = two.split("Held: suspended and fighting", 1)[1].split("<h2>", 1)[0]
    assert "us-east-1" in held
