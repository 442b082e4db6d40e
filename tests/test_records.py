"""One record pipeline: every view of a record (history row, `history --json`, log line,
`plan --json`) carries the fields of one definition, with values printed alike."""

import json
from datetime import UTC, datetime

import structlog

from homeostat.desired_state.identifiers import Kind
from homeostat.operator.execution import Executor
from homeostat.operator.history import record_of, row_of
from homeostat.operator.history_schema import actions
from homeostat.operator.output import PLAN_ACTION_FIELDS, history_text, plan_json, plan_text, report_text
from homeostat.operator.records import (
    RECORD_FIELDS,
    ActionRecord,
    RevisionRejected,
    Unmanaged,
    event_record,
)
from homeostat.operator.statuses import ResourceStatus, State
from homeostat.reconcilers.actions import Action, Finding, Outcome, Plan
from tests.conftest import HISTORY_JSON_FIELDS

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)

CONFLICTED = Action(
    kind=Kind("ECSService"),
    name="worker",
    action="update_service",
    target="prod/worker",
    before={"desiredCount": 3},
    after={"desiredCount": 6},
    reason="drift: desiredCount differs from the manifest",
    conflict="service has an Application Auto Scaling target",
)


class Recorder:
    """A history that keeps what it is given (rows as the database would store them)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, object]] = []

    def write(self, entries: list[tuple[int | None, ActionRecord]]) -> list[int | None]:
        self.rows.extend(row_of(record) for _, record in entries)
        return [None] * len(entries)

    def exists(self, record: ActionRecord) -> bool:
        return False


def test_the_field_list_is_the_contract_history_fields_plus_the_conflict() -> None:
    assert set(RECORD_FIELDS) == HISTORY_JSON_FIELDS | {"target", "conflict"}
    # Beside the fields: the row id, and the writer's shard, which the store stamps (migration 0004).
    columns = {c.name for c in actions.columns}
    assert columns == {*RECORD_FIELDS, "id", "shard"}, "one history column per field"


def test_history_row_json_and_log_line_carry_the_same_fields_and_values() -> None:
    """The executor's log line, the row it writes and `history --json` of that row agree."""
    history = Recorder()
    executor = Executor(history, None, structlog.get_logger(), lambda: NOW)  # type: ignore[arg-type]
    with structlog.testing.capture_logs() as logs:
        (record,) = executor.execute(None, [CONFLICTED], None, revision="r1", dry_run=False)  # type: ignore[arg-type]
    (row,) = history.rows
    (line,) = [e for e in logs if e["event"] == "action"]
    assert list(row) == list(RECORD_FIELDS)
    assert list(record.to_json()) == list(RECORD_FIELDS)
    assert {k: line[k] for k in RECORD_FIELDS} == record.to_json()
    assert record_of(row) == record  # type: ignore[arg-type]
    assert record.to_json()["conflict"] == "service has an Application Auto Scaling target"
    assert record.to_json()["reason"] == "drift: desiredCount differs from the manifest"
    assert record.outcome == Outcome.CONFLICT


def test_plan_json_actions_are_the_record_view_of_the_action() -> None:
    """A `plan --json` action is the record fields an action already has, valued exactly as the
    record that executing it writes (kind and name are its resource's)."""
    document = plan_json("r1", [Plan(Kind("ECSService"), "worker", actions=(CONFLICTED,))], [])
    (planned,) = document["resources"][0]["actions"]
    assert set(PLAN_ACTION_FIELDS) < set(RECORD_FIELDS)
    assert tuple(planned) == PLAN_ACTION_FIELDS
    executed = ActionRecord.of(CONFLICTED, Outcome.CONFLICT, time=NOW, revision="r1").to_json()
    assert planned == {k: executed[k] for k in PLAN_ACTION_FIELDS}
    assert {"action", "target", "before", "after", "reason", "conflict"} == set(planned)


def test_plan_and_report_say_each_resource_s_region_and_show_it_when_there_are_several() -> None:
    """`plan --json` and /status always carry the region; the text tables add a REGION column
    only when the resources span several regions."""
    plans = [Plan(Kind("ECSService"), "worker", actions=(CONFLICTED,)), Plan(Kind("ECSService"), "api")]
    regions = {("ECSService", "worker"): "eu-west-1", ("ECSService", "api"): "eu-west-1"}
    held = ResourceStatus(Kind("ECSService"), "web", State.SUSPENDED, "suspended", None, region="us-east-1")
    one = plan_json("r1", plans, [], regions)
    assert [r["region"] for r in one["resources"]] == ["eu-west-1", "eu-west-1"]
    assert plan_text(one).splitlines()[1].split()[:3] == ["KIND", "NAME", "ACTION"]
    two = plan_json("r1", plans, [held], regions)
    assert {r["name"]: r["region"] for r in two["resources"]} == {
        "api": "eu-west-1",
        "web": "us-east-1",
        "worker": "eu-west-1",
    }
    header, row = plan_text(two).splitlines()[1:3]
    assert header.split()[:4] == ["KIND", "NAME", "REGION", "ACTION"]
    assert row.split()[:4] == ["ECSService", "worker", "eu-west-1", "update_service"]
    statuses = [ResourceStatus(Kind("ECSService"), "api", State.IN_SYNC, "in sync", NOW, region="eu-west-1")]
    assert report_text(statuses).split()[:3] == ["KIND", "NAME", "STATE"]
    assert held.to_json()["region"] == "us-east-1"
    header, *rows = report_text([*statuses, held]).splitlines()
    assert header.split()[:3] == ["KIND", "NAME", "REGION"]
    assert [r.split()[2] for r in rows] == ["eu-west-1", "us-east-1"]


def test_values_print_as_json_true_false_null_in_every_view() -> None:
    record = ActionRecord.of(CONFLICTED, Outcome.DRY_RUN, time=NOW, revision="r1")
    text = json.dumps(record.to_json(), sort_keys=True)
    assert '"dry_run": true' in text
    assert '"error": null' in text
    assert json.dumps(row_of(record)["dry_run"]) == "true"
    assert json.loads(text)["time"] == "2026-11-27T12:00:00Z"


def test_events_become_records_with_their_plain_reasons() -> None:
    """Findings, revision rejections and unmanaged resources are typed events with one record each."""
    finding = event_record(
        Finding(Kind("SnapshotRetention"), "prod", "create_snapshot", "p-1", "slot missed", "too late"),
        time=NOW,
        revision="r1",
    )
    assert (finding.kind, finding.outcome, finding.error, finding.revision) == (
        "SnapshotRetention",
        Outcome.FAILED,
        "too late",
        "r1",
    )
    rejected = event_record(
        RevisionRejected(
            "/srv/desired", rejected="bad1", in_force="good0", errors=("a.yaml:1: x", "b.yaml:2: y")
        ),
        time=NOW,
        revision="ignored",
    )
    assert (rejected.kind, rejected.name, rejected.action, rejected.target) == (
        "DesiredState",
        "desired-state",
        "reject_revision",
        "/srv/desired",
    )
    assert (rejected.before, rejected.after, rejected.revision) == (
        {"revision": "good0"},
        {"revision": "bad1"},
        "bad1",
    )
    assert rejected.error == "a.yaml:1: x; b.yaml:2: y"
    unmanaged = event_record(Unmanaged("ECSService", "api"), time=NOW, revision="r2")
    assert (unmanaged.action, unmanaged.outcome, unmanaged.before, unmanaged.after) == (
        "unmanage",
        Outcome.APPLIED,
        {"managed": True},
        {"managed": False},
    )


def test_the_history_table_shows_the_conflict_beside_the_reason() -> None:
    record = ActionRecord.of(CONFLICTED, Outcome.CONFLICT, time=NOW, revision="r1")
    assert (
        "drift: desiredCount differs from the manifest; conflict: service has an Application"
        in history_text([record])
    )
