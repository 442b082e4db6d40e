"""The JSON Schema for editors and CI agrees with the validator that homeostat enforces.

Specification (contract section 3, issue 6): `homeostat schema` prints the
JSON Schema that `examples/homeostat.schema.json` holds (the file the
examples' `# yaml-language-server: $schema=...` header points to); it accepts
every example document and rejects malformed manifests exactly where
`homeostat validate` does. Some rules cannot be written in JSON Schema (cron
syntax, IANA time zones, either-or fields checked by model validators,
cross-document rules): for those the schema is knowingly weaker, and
`homeostat validate` is the gate. The tests pin both sides.
"""

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from homeostat.desired_state.identifiers import Revision
from homeostat.desired_state.loading import load_files
from homeostat.desired_state.schema import manifest_schema
from homeostat.desired_state.state import InvalidDesiredState
from homeostat.reconcilers.registry import kind_table, schema_models
from tests.conftest import EXAMPLES, REPO, run_main

SCHEMA_FILE = REPO / "examples" / "homeostat.schema.json"
VALIDATOR = Draft202012Validator(manifest_schema(schema_models()))

ECS = """
apiVersion: homeostat/v1
kind: ECSService
metadata: {name: api, labels: {team: platform}}
spec: {cluster: c, service: s, desiredCount: 4, taskDefinition: "api:42"}
"""
SNAPSHOTS = """
apiVersion: homeostat/v1
kind: SnapshotRetention
metadata: {name: aurora}
spec:
  dbClusterIdentifier: db
  snapshotPrefix: db-manual-
  schedule: "0 3 * * *"
  retention: {maxAge: 7d, minKeep: 1, maxDeletionsPerRun: 20}
  protect: ["db-emergency-*"]
"""
ALARMS = """
apiVersion: homeostat/v1
kind: AlarmActions
metadata: {name: alarms}
spec: {alarmNamePrefix: prod, actionsEnabled: true}
"""
WINDOW = """
apiVersion: homeostat/v1
kind: MaintenanceWindow
metadata: {name: sunday}
spec:
  schedule: "0 2 * * SUN"
  duration: 4h
  silenceAlarms: [{alarmNames: [a, b]}]
"""

# Rejected by both the schema and `homeostat validate`.
BAD: dict[str, str] = {
    "unknown top-level field": ECS + "status: {}\n",
    "unknown spec field (typo)": ECS.replace("desiredCount: 4", "desiredcount: 4"),
    "missing spec": "apiVersion: homeostat/v1\nkind: ECSService\nmetadata: {name: api}\n",
    "missing name": ECS.replace("name: api, ", ""),
    "upper-case name": ECS.replace("name: api", "name: Api"),
    "name ending in a dash": ECS.replace("name: api", "name: api-"),
    "name of 64 characters": ECS.replace("name: api", "name: " + "a" * 64),
    "label value not a string": ECS.replace("team: platform", "team: 3"),
    "negative desiredCount": ECS.replace("desiredCount: 4", "desiredCount: -1"),
    "desiredCount as a string": ECS.replace("desiredCount: 4", 'desiredCount: "4"'),
    "desiredCount as a boolean": ECS.replace("desiredCount: 4", "desiredCount: true"),
    "task definition without revision": ECS.replace('"api:42"', "api"),
    "task definition revision 0": ECS.replace('"api:42"', '"api:0"'),
    "wrong apiVersion": ECS.replace("homeostat/v1", "homeostat/v2"),
    "unknown kind": ECS.replace("kind: ECSService", "kind: ECSServices"),
    "no kind": ECS.replace("kind: ECSService\n", ""),
    "a list, not a mapping": "- apiVersion: homeostat/v1\n",
    "duration without unit": SNAPSHOTS.replace("maxAge: 7d", "maxAge: 7"),
    "duration spelled out": SNAPSHOTS.replace("maxAge: 7d", 'maxAge: "7 days"'),
    "zero duration": SNAPSHOTS.replace("maxAge: 7d", "maxAge: 0d"),
    "retention without maxAge": SNAPSHOTS.replace("maxAge: 7d, ", ""),
    "maxDeletionsPerRun 0": SNAPSHOTS.replace("maxDeletionsPerRun: 20", "maxDeletionsPerRun: 0"),
    "maxDeletionsPerRun over 1000": SNAPSHOTS.replace("maxDeletionsPerRun: 20", "maxDeletionsPerRun: 1001"),
    "empty protect pattern": SNAPSHOTS.replace('["db-emergency-*"]', '[""]'),
    "cluster id starting with a digit": SNAPSHOTS.replace(
        "dbClusterIdentifier: db", "dbClusterIdentifier: 1db"
    ),
    "actionsEnabled as a string": ALARMS.replace("actionsEnabled: true", 'actionsEnabled: "true"'),
    "actionsEnabled missing": ALARMS.replace(", actionsEnabled: true", ""),
    "empty alarmNames": WINDOW.replace("alarmNames: [a, b]", "alarmNames: []"),
    "empty alarm name prefix": ALARMS.replace("alarmNamePrefix: prod", 'alarmNamePrefix: ""'),
    "silenceAlarms not a list": WINDOW.replace("[{alarmNames: [a, b]}]", "{alarmNames: [a]}"),
    "suspend as a string": ECS.replace("desiredCount: 4", 'desiredCount: 4, suspend: "yes"'),
}

# Rejected by `homeostat validate` only: not expressible in (or not put into) the JSON Schema.
VALIDATE_ONLY: dict[str, str] = {
    "cron with an unknown weekday": WINDOW.replace("0 2 * * SUN", "0 2 * * FUN"),
    "cron with six fields": SNAPSHOTS.replace("0 3 * * *", "0 0 3 * * *"),
    "unknown time zone": WINDOW.replace("duration: 4h", "duration: 4h\n  timeZone: Mars/Olympus"),
    "desiredCount and autoscaling": ECS.replace(
        "desiredCount: 4", "desiredCount: 4, autoscaling: {minCapacity: 1, maxCapacity: 2}"
    ),
    "minCapacity above maxCapacity": ECS.replace(
        "desiredCount: 4", "autoscaling: {minCapacity: 3, maxCapacity: 2}"
    ),
    "both alarm selectors": ALARMS.replace("prod,", "prod, alarmNames: [a],"),
    "no alarm selector": ALARMS.replace("alarmNamePrefix: prod, ", ""),
    "schedule without duration": WINDOW.replace("  duration: 4h\n", ""),
    "window ending before it starts": WINDOW.replace(
        '  schedule: "0 2 * * SUN"\n  duration: 4h\n',
        '  start: "2026-12-06T06:00:00Z"\n  end: "2026-12-06T02:00:00Z"\n',
    ),
}


def json_value(value: Any) -> Any:
    """The document as an editor sees it: YAML timestamps are plain strings in JSON."""
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_value(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def schema_accepts(text: str) -> bool:
    return bool(VALIDATOR.is_valid(json_value(yaml.safe_load(text))))


def homeostat_accepts(text: str) -> bool:
    try:
        load_files({Path("case.yaml"): text.encode()}, Path("."), Revision("test"), kinds=kind_table())
    except InvalidDesiredState:
        return False
    return True


def example_documents() -> list[tuple[str, Any]]:
    documents = []
    for path in sorted(EXAMPLES.rglob("*.y*ml")):
        for index, document in enumerate(yaml.safe_load_all(path.read_text())):
            documents.append((f"{path.name}#{index}", json_value(document)))
    return documents


def test_the_committed_schema_file_is_the_output_of_homeostat_schema(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """examples/homeostat.schema.json is exactly what `homeostat schema` prints (regenerate it if not)."""
    result = run_main(capsys, "schema")
    assert result.returncode == 0, result.stderr
    assert (
        json.loads(SCHEMA_FILE.read_text()) == json.loads(result.stdout) == manifest_schema(schema_models())
    )


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    """Editors and CI tools can load the schema itself."""
    Draft202012Validator.check_schema(manifest_schema(schema_models()))
    assert manifest_schema(schema_models())["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_every_example_names_the_schema_for_yaml_language_server() -> None:
    """Each example file starts with the modeline that points editors at the committed schema."""
    for path in sorted(EXAMPLES.rglob("*.y*ml")):
        header = path.read_text().splitlines()[0]
        assert header == "# yaml-language-server: $schema=../homeostat.schema.json", path
        assert (path.parent / "../homeostat.schema.json").resolve() == SCHEMA_FILE


@pytest.mark.parametrize(("where", "document"), example_documents())
def test_the_schema_accepts_every_example_document(where: str, document: Any) -> None:
    """Every document in examples/ validates against the schema."""
    errors = [error.message for error in VALIDATOR.iter_errors(document)]
    assert errors == [], where


@pytest.mark.parametrize(
    "text", [ECS, SNAPSHOTS, ALARMS, WINDOW], ids=["ecs", "snapshots", "alarms", "window"]
)
def test_both_accept_the_base_documents(text: str) -> None:
    """The well-formed document of each kind that the bad cases mutate is valid to both."""
    assert schema_accepts(text)
    assert homeostat_accepts(text)


@pytest.mark.parametrize("text", BAD.values(), ids=list(BAD))
def test_both_reject_malformed_manifests(text: str) -> None:
    """The schema and `homeostat validate` reject the same malformed manifests."""
    assert not schema_accepts(text)
    assert not homeostat_accepts(text)


@pytest.mark.parametrize("text", VALIDATE_ONLY.values(), ids=list(VALIDATE_ONLY))
def test_rules_beyond_json_schema_are_enforced_by_validate(text: str) -> None:
    """Where the schema cannot say it (cron, zones, either-or fields), only validate rejects."""
    assert schema_accepts(text)
    assert not homeostat_accepts(text)


# Names and counts over characters where JSON Schema regexes (Python `re` in the jsonschema
# library, ECMAScript in editors) and pydantic's Rust regex agree. They differ on a trailing
# newline (`$` matches before it in Python), so newlines are left out of the alphabet.
names = st.text(alphabet="abcAZ019-_.", max_size=70)
counts = st.one_of(st.integers(min_value=-5, max_value=10**6), st.booleans(), st.text(max_size=3), st.none())
revisions = st.integers(min_value=-2, max_value=1000)


@given(name=names, count=counts, family=names, revision=revisions)
def test_schema_and_models_agree_on_generated_services(
    name: str, count: Any, family: str, revision: int
) -> None:
    """For any name, desiredCount and task definition pin, the schema and validate give the same verdict."""
    document: dict[str, Any] = {
        "apiVersion": "homeostat/v1",
        "kind": "ECSService",
        "metadata": {"name": name},
        "spec": {
            "cluster": "c",
            "service": "s",
            "desiredCount": count,
            "taskDefinition": f"{family}:{revision}",
        },
    }
    if count is None:
        del document["spec"]["desiredCount"]
    text = json.dumps(document)  # JSON is YAML: the same bytes go to both validators
    assert schema_accepts(text) == homeostat_accepts(text)
