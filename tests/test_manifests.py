"""Specification of manifest validation: every error class with the file:line it reports.

Each test writes a small desired-state directory and asserts the exact
(file, line, field) of every error the loader returns, so an operator can
jump straight to the offending line.
"""

import os
import textwrap
from pathlib import Path

import pytest

from homeostat.desired_state.identifiers import Kind
from homeostat.desired_state.loading import load_directory, manifest_files
from homeostat.desired_state.state import DesiredState, InvalidDesiredState, ManifestError
from homeostat.reconcilers.ecs_service import ECSService
from homeostat.reconcilers.maintenance_window import MaintenanceWindow
from homeostat.reconcilers.registry import KINDS, kind_table

from .conftest import EXAMPLES

ECS = """\
apiVersion: homeostat/v1
kind: ECSService
metadata:
  name: {name}
spec:
  cluster: prod
  service: prod-{name}
  desiredCount: 2
"""


def write(directory: Path, relative: str, text: str) -> Path:
    path = directory / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def errors_of(directory: Path) -> list[ManifestError]:
    with pytest.raises(InvalidDesiredState) as info:
        load_directory(directory, kinds=kind_table())
    return list(info.value.errors)


def located(errors: list[ManifestError]) -> list[tuple[str, int | None, str | None]]:
    return [(e.file, e.line, e.field) for e in errors]


def only_error(directory: Path) -> ManifestError:
    errors = errors_of(directory)
    assert len(errors) == 1, errors
    return errors[0]


# --- single-document errors -------------------------------------------------------------------


def test_unknown_field_is_reported_at_its_line(tmp_path: Path) -> None:
    """A field the schema does not know is an error at the line of that field."""
    write(tmp_path, "svc.yaml", ECS.format(name="api") + "  replicas: 3\n")
    error = only_error(tmp_path)
    assert (error.file, error.line, error.field) == ("svc.yaml", 9, "spec.replicas")
    assert error.message == "unknown field"


def test_unknown_top_level_field_is_reported(tmp_path: Path) -> None:
    """Unknown fields are rejected at every level, including beside apiVersion and kind."""
    write(tmp_path, "svc.yaml", "status: {}\n" + ECS.format(name="api"))
    error = only_error(tmp_path)
    assert (error.file, error.line, error.field) == ("svc.yaml", 1, "status")
    assert error.message == "unknown field"


def test_wrong_type_is_reported_at_its_line(tmp_path: Path) -> None:
    """A string where an integer is required is an error, never coerced."""
    write(tmp_path, "svc.yaml", ECS.format(name="api").replace("desiredCount: 2", 'desiredCount: "2"'))
    error = only_error(tmp_path)
    assert (error.file, error.line, error.field) == ("svc.yaml", 8, "spec.desiredCount")
    assert "integer" in error.message


def test_negative_count_is_rejected(tmp_path: Path) -> None:
    """desiredCount must be an integer >= 0."""
    write(tmp_path, "svc.yaml", ECS.format(name="api").replace("desiredCount: 2", "desiredCount: -1"))
    error = only_error(tmp_path)
    assert (error.line, error.field) == (8, "spec.desiredCount")


def test_boolean_is_not_an_integer(tmp_path: Path) -> None:
    """YAML `true` is not accepted as a count (strict types)."""
    write(tmp_path, "svc.yaml", ECS.format(name="api").replace("desiredCount: 2", "desiredCount: true"))
    assert located(errors_of(tmp_path)) == [("svc.yaml", 8, "spec.desiredCount")]


def test_missing_required_field_is_reported_at_its_parent(tmp_path: Path) -> None:
    """A missing required field is reported at the line of the mapping that lacks it."""
    write(tmp_path, "svc.yaml", ECS.format(name="api").replace("  service: prod-api\n", ""))
    error = only_error(tmp_path)
    assert (error.file, error.line, error.field) == ("svc.yaml", 5, "spec.service")
    assert error.message == "required field is missing"


@pytest.mark.parametrize(
    "name",
    ["API", "api_1", "-api", "api-", "a" * 64, "api.web", ""],
)
def test_bad_names_are_rejected(tmp_path: Path, name: str) -> None:
    """metadata.name is 1-63 characters of [a-z0-9-], starting and ending alphanumeric."""
    write(tmp_path, "svc.yaml", ECS.format(name=f'"{name}"').replace(f'prod-"{name}"', "prod-api"))
    error = only_error(tmp_path)
    assert (error.file, error.line, error.field) == ("svc.yaml", 4, "metadata.name")


@pytest.mark.parametrize("name", ["a", "api", "a1-b2", "x" * 63])
def test_good_names_are_accepted(tmp_path: Path, name: str) -> None:
    """Names at the edges of the rule are valid."""
    write(tmp_path, "svc.yaml", ECS.format(name=name))
    assert load_directory(tmp_path, kinds=kind_table()).resources[0].name == name


def test_yaml_boolean_word_as_name_is_a_type_error(tmp_path: Path) -> None:
    """An unquoted `on` is a YAML boolean, so as a name it is a type error that says to quote it."""
    write(tmp_path, "svc.yaml", ECS.format(name="on"))
    errors = errors_of(tmp_path)
    assert located(errors) == [("svc.yaml", 4, "metadata.name")]
    assert errors[0].message == "expected a string, got the boolean true: quote the value"


WINDOW = """\
apiVersion: homeostat/v1
kind: MaintenanceWindow
metadata:
  name: sunday
spec:
  schedule: "{schedule}"
  duration: {duration}
  timeZone: {zone}
  silenceAlarms:
    - alarmNamePrefix: prod
"""


@pytest.mark.parametrize("duration", ["4", "4x", "0h", "-1h", "1.5h", "h", "4 hours"])
def test_bad_duration_is_reported(tmp_path: Path, duration: str) -> None:
    """Durations are a positive whole number followed by s, m, h, d or w."""
    write(tmp_path, "w.yaml", WINDOW.format(schedule="0 2 * * SUN", duration=duration, zone="UTC"))
    error = only_error(tmp_path)
    assert (error.line, error.field) == (7, "spec.duration")
    assert "duration" in error.message


@pytest.mark.parametrize(
    ("duration", "seconds"), [("90s", 90), ("30m", 1800), ("4h", 14400), ("7d", 604800), ("1w", 604800)]
)
def test_durations_mean_elapsed_time(tmp_path: Path, duration: str, seconds: int) -> None:
    """Each duration unit converts to the expected number of seconds."""
    write(tmp_path, "w.yaml", WINDOW.format(schedule="0 2 * * SUN", duration=duration, zone="UTC"))
    manifest = load_directory(tmp_path, kinds=kind_table()).resources[0].manifest
    assert isinstance(manifest, MaintenanceWindow)
    assert manifest.spec.duration is not None
    assert manifest.spec.duration.total_seconds() == seconds


def test_weekday_8_is_rejected_with_the_rule(tmp_path: Path) -> None:
    """`0 2 * * 8` is invalid: day-of-week runs 0-7 (0 and 7 are Sunday)."""
    write(tmp_path, "w.yaml", WINDOW.format(schedule="0 2 * * 8", duration="4h", zone="UTC"))
    error = only_error(tmp_path)
    assert (error.file, error.line, error.field) == ("w.yaml", 6, "spec.schedule")
    assert "0 2 * * 8" in error.message
    assert "0 and 7 = Sunday" in error.message


@pytest.mark.parametrize("schedule", ["0 2 * *", "0 2 * * SUN *", "61 2 * * *", "0 2 30 2 *", "@daily"])
def test_other_bad_crons_are_rejected(tmp_path: Path, schedule: str) -> None:
    """Wrong field counts, out-of-range values and never-firing dates are schedule errors."""
    write(tmp_path, "w.yaml", WINDOW.format(schedule=schedule, duration="4h", zone="UTC"))
    assert located(errors_of(tmp_path)) == [("w.yaml", 6, "spec.schedule")]


def test_bad_time_zone_is_reported(tmp_path: Path) -> None:
    """timeZone must be an IANA name."""
    write(tmp_path, "w.yaml", WINDOW.format(schedule="0 2 * * SUN", duration="4h", zone="Mars/Olympus"))
    error = only_error(tmp_path)
    assert (error.file, error.line, error.field) == ("w.yaml", 8, "spec.timeZone")
    assert "Mars/Olympus" in error.message


def test_one_off_window_start_must_precede_end(tmp_path: Path) -> None:
    """A one-off window whose start is not before its end is rejected (equal counts as not before)."""
    write(
        tmp_path,
        "w.yaml",
        """\
        apiVersion: homeostat/v1
        kind: MaintenanceWindow
        metadata:
          name: once
        spec:
          start: "2026-12-06T06:00:00Z"
          end: "2026-12-06T06:00:00Z"
        """,
    )
    error = only_error(tmp_path)
    assert (error.file, error.line, error.field) == ("w.yaml", 5, "spec")
    assert error.message == "start must be before end"


def test_one_off_window_needs_an_offset(tmp_path: Path) -> None:
    """One-off window times without a UTC offset are ambiguous and rejected."""
    write(
        tmp_path,
        "w.yaml",
        """\
        apiVersion: homeostat/v1
        kind: MaintenanceWindow
        metadata:
          name: once
        spec:
          start: "2026-12-06T02:00:00"
          end: "2026-12-06T06:00:00Z"
        """,
    )
    assert located(errors_of(tmp_path)) == [("w.yaml", 6, "spec.start")]


def test_window_mixing_schedule_and_one_off_is_rejected(tmp_path: Path) -> None:
    """A window is either recurring (schedule + duration) or one-off (start + end), never both."""
    text = WINDOW.format(schedule="0 2 * * SUN", duration="4h", zone="UTC")
    write(tmp_path, "w.yaml", text + '  start: "2026-12-06T02:00:00Z"\n  end: "2026-12-06T06:00:00Z"\n')
    assert located(errors_of(tmp_path)) == [("w.yaml", 5, "spec")]


def test_count_and_autoscaling_together_are_rejected(tmp_path: Path) -> None:
    """An ECSService declares desiredCount or autoscaling bounds, not both."""
    text = ECS.format(name="api") + "  autoscaling: {minCapacity: 1, maxCapacity: 2}\n"
    write(tmp_path, "svc.yaml", text)
    assert located(errors_of(tmp_path)) == [("svc.yaml", 5, "spec")]


def test_alarm_actions_need_exactly_one_selector(tmp_path: Path) -> None:
    """AlarmActions selects by alarmNamePrefix or alarmNames, exactly one."""
    write(
        tmp_path,
        "a.yaml",
        """\
        apiVersion: homeostat/v1
        kind: AlarmActions
        metadata: {name: both}
        spec:
          alarmNamePrefix: prod
          alarmNames: [prod-cpu]
          actionsEnabled: true
        """,
    )
    assert located(errors_of(tmp_path)) == [("a.yaml", 4, "spec")]


def test_unknown_kind_is_reported(tmp_path: Path) -> None:
    """A kind outside the four is an error at the kind line, naming the known kinds."""
    write(tmp_path, "x.yaml", ECS.format(name="api").replace("kind: ECSService", "kind: Deployment"))
    error = only_error(tmp_path)
    assert (error.file, error.line, error.field) == ("x.yaml", 2, "kind")
    assert "Deployment" in error.message
    assert "ECSService" in error.message


def test_missing_kind_is_reported(tmp_path: Path) -> None:
    """A document without kind is an error."""
    write(tmp_path, "x.yaml", ECS.format(name="api").replace("kind: ECSService\n", ""))
    assert located(errors_of(tmp_path)) == [("x.yaml", 1, "kind")]


@pytest.mark.parametrize("version", ["homeostat/v2", "v1", "apps/v1"])
def test_wrong_api_version_is_reported(tmp_path: Path, version: str) -> None:
    """apiVersion must be homeostat/v1."""
    write(tmp_path, "x.yaml", ECS.format(name="api").replace("homeostat/v1", version))
    error = only_error(tmp_path)
    assert (error.file, error.line, error.field) == ("x.yaml", 1, "apiVersion")
    assert version in error.message


def test_python_object_tag_is_an_error_and_never_executed(tmp_path: Path) -> None:
    """A `!!python/object` tag is rejected by the safe loader; the code in it never runs."""
    marker = tmp_path / "pwned"
    write(
        tmp_path,
        "evil.yaml",
        f"""\
        apiVersion: homeostat/v1
        kind: ECSService
        metadata:
          name: api
        spec: !!python/object/apply:os.system ["touch {marker}"]
        """,
    )
    error = only_error(tmp_path)
    assert (error.file, error.line) == ("evil.yaml", 5)
    assert "tag" in error.message
    assert not marker.exists()


def test_python_object_new_tag_is_an_error(tmp_path: Path) -> None:
    """Every python/* tag is refused, not only apply."""
    write(tmp_path, "evil.yaml", "--- !!python/object:pathlib.Path {}\n")
    error = only_error(tmp_path)
    assert (error.file, error.line) == ("evil.yaml", 1)
    assert error.message.startswith("invalid YAML: unsupported YAML tag")


def test_invalid_yaml_is_reported_with_its_line(tmp_path: Path) -> None:
    """A syntax error is reported at the line where the parser found it."""
    write(tmp_path, "broken.yaml", "apiVersion: homeostat/v1\nkind: [ECSService\nmetadata: {}\n")
    error = only_error(tmp_path)
    assert error.file == "broken.yaml"
    assert error.line is not None
    assert error.line >= 2
    assert error.message.startswith("invalid YAML")


def test_bad_indentation_is_invalid_yaml(tmp_path: Path) -> None:
    """A mapping value where YAML does not allow one is reported at that line."""
    write(tmp_path, "broken.yaml", "apiVersion: homeostat/v1\nkind: ECSService\n  metadata: x\n")
    error = only_error(tmp_path)
    assert (error.file, error.line) == ("broken.yaml", 3)
    assert error.message.startswith("invalid YAML")


def test_duplicate_yaml_keys_are_reported(tmp_path: Path) -> None:
    """A key given twice in one mapping is an error at the second occurrence (YAML would keep the last)."""
    write(tmp_path, "dup.yaml", ECS.format(name="api") + "  desiredCount: 5\n")
    error = only_error(tmp_path)
    assert (error.file, error.line, error.field) == ("dup.yaml", 9, "spec.desiredCount")
    assert error.message == "duplicate key"


@pytest.mark.parametrize("document", ["- a\n- b\n", "just a string\n", "42\n"])
def test_non_mapping_document_is_reported(tmp_path: Path, document: str) -> None:
    """A document that is a list or a scalar is not a manifest."""
    write(tmp_path, "x.yaml", ECS.format(name="api") + "---\n" + document)
    error = only_error(tmp_path)
    assert (error.file, error.line) == ("x.yaml", 10)
    assert "mapping" in error.message


# --- cross-document errors --------------------------------------------------------------------


def test_duplicate_name_per_kind_names_both_places(tmp_path: Path) -> None:
    """Two manifests of one kind with one name are an error naming both files and lines."""
    write(tmp_path, "a.yaml", ECS.format(name="api"))
    write(tmp_path, "b.yaml", "# second\n" + ECS.format(name="api").replace("prod-api", "prod-web"))
    error = only_error(tmp_path)
    assert (error.file, error.line, error.field) == ("b.yaml", 2, "metadata.name")
    assert "duplicate" in error.message
    assert "a.yaml:1" in error.message


def test_same_name_in_different_kinds_is_fine(tmp_path: Path) -> None:
    """Names are unique per kind only."""
    write(tmp_path, "a.yaml", ECS.format(name="prod"))
    write(tmp_path, "b.yaml", WINDOW.format(schedule="0 2 * * SUN", duration="4h", zone="UTC"))
    write(tmp_path, "c.yaml", ALARMS.format(name="prod", selector="alarmNamePrefix: x", enabled="true"))
    assert len(load_directory(tmp_path, kinds=kind_table()).resources) == 3


ALARMS = """\
apiVersion: homeostat/v1
kind: AlarmActions
metadata:
  name: {name}
spec:
  {selector}
  actionsEnabled: {enabled}
"""


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("alarmNamePrefix: prod", "alarmNamePrefix: prod-api"),
        ("alarmNamePrefix: prod-api", "alarmNamePrefix: prod"),
        ("alarmNamePrefix: prod", "alarmNames: [prod-cpu, other]"),
        ("alarmNames: [x, prod-cpu]", "alarmNames: [prod-cpu]"),
    ],
)
def test_conflicting_alarm_actions_name_both_files(tmp_path: Path, left: str, right: str) -> None:
    """Two AlarmActions with different actionsEnabled whose selectors overlap are an error naming both."""
    write(tmp_path, "enable.yaml", ALARMS.format(name="enable", selector=left, enabled="true"))
    write(tmp_path, "teams/silence.yaml", ALARMS.format(name="silence", selector=right, enabled="false"))
    error = only_error(tmp_path)
    assert (error.file, error.line, error.field) == ("teams/silence.yaml", 1, "spec")
    assert "'enable'" in error.message
    assert "'silence'" in error.message
    assert "enable.yaml:1" in error.message


@pytest.mark.parametrize(
    ("left", "right", "same_value"),
    [
        ("alarmNamePrefix: prod-api", "alarmNamePrefix: prod-web", False),
        ("alarmNames: [a]", "alarmNames: [b]", False),
        ("alarmNamePrefix: prod", "alarmNames: [staging-cpu]", False),
        ("alarmNamePrefix: prod", "alarmNamePrefix: prod-api", True),
    ],
)
def test_alarm_actions_that_cannot_disagree_are_fine(
    tmp_path: Path, left: str, right: str, same_value: bool
) -> None:
    """Disjoint selectors, or overlapping ones with the same value, are valid."""
    write(tmp_path, "a.yaml", ALARMS.format(name="a", selector=left, enabled="true"))
    other = "true" if same_value else "false"
    write(tmp_path, "b.yaml", ALARMS.format(name="b", selector=right, enabled=other))
    assert len(load_directory(tmp_path, kinds=kind_table()).resources) == 2


def test_every_error_is_reported_at_once(tmp_path: Path) -> None:
    """The loader returns every error of the directory, in file order, not just the first."""
    write(tmp_path, "a.yaml", ECS.format(name="api") + "  replicas: 3\n")
    write(tmp_path, "b.yaml", WINDOW.format(schedule="0 2 * * 8", duration="4x", zone="UTC"))
    assert located(errors_of(tmp_path)) == [
        ("a.yaml", 9, "spec.replicas"),
        ("b.yaml", 6, "spec.schedule"),
        ("b.yaml", 7, "spec.duration"),
    ]


def test_one_invalid_document_rejects_the_whole_directory(tmp_path: Path) -> None:
    """A directory with one bad manifest among good ones yields no desired state at all."""
    write(tmp_path, "good.yaml", ECS.format(name="api"))
    write(tmp_path, "bad.yaml", ECS.format(name="web").replace("desiredCount: 2", "desiredCount: x"))
    assert located(errors_of(tmp_path)) == [("bad.yaml", 8, "spec.desiredCount")]


def test_error_text_is_file_line_field_message() -> None:
    """A ManifestError prints as `file:line: field: message`."""
    assert str(ManifestError("a.yaml", 3, "spec.x", "unknown field")) == "a.yaml:3: spec.x: unknown field"
    assert str(ManifestError("dir", None, None, "no such directory")) == "dir: no such directory"


# --- directory layout -------------------------------------------------------------------------


def test_multi_document_files_record_each_document_line(tmp_path: Path) -> None:
    """Every document of a `---` separated file is a resource whose source is its first line."""
    write(tmp_path, "all.yaml", ECS.format(name="api") + "---\n" + ECS.format(name="web") + "---\n")
    desired = load_directory(tmp_path, kinds=kind_table())
    assert [(r.name, r.source.file, r.source.line) for r in desired.resources] == [
        ("api", "all.yaml", 1),
        ("web", "all.yaml", 10),
    ]


def test_empty_documents_and_files_are_ignored(tmp_path: Path) -> None:
    """Empty files, comment-only files and empty documents between `---` hold no resources."""
    write(tmp_path, "empty.yaml", "")
    write(tmp_path, "comments.yml", "# nothing here yet\n")
    write(tmp_path, "svc.yaml", "---\n---\n" + ECS.format(name="api"))
    desired = load_directory(tmp_path, kinds=kind_table())
    assert [(r.name, r.source.line) for r in desired.resources] == [("api", 3)]


def test_directories_are_searched_recursively(tmp_path: Path) -> None:
    """Manifests in nested folders are loaded, with paths relative to the directory."""
    write(tmp_path, "a.yaml", ECS.format(name="api"))
    write(tmp_path, "team/b.yml", ECS.format(name="web"))
    write(tmp_path, "team/deep/er/c.yaml", ECS.format(name="worker"))
    desired = load_directory(tmp_path, kinds=kind_table())
    assert sorted((r.source.file, r.name) for r in desired.resources) == [
        ("a.yaml", "api"),
        ("team/b.yml", "web"),
        ("team/deep/er/c.yaml", "worker"),
    ]


def test_hidden_folders_and_other_files_are_skipped(tmp_path: Path) -> None:
    """Files under hidden folders (such as .git), hidden files and non-YAML files are not read."""
    write(tmp_path, "svc.yaml", ECS.format(name="api"))
    for skipped in (".git/config.yaml", ".github/workflows/ci.yml", "team/.draft/x.yaml", ".x.yaml"):
        write(tmp_path, skipped, "not: [valid yaml\n")
    write(tmp_path, "README.md", "not: [valid yaml\n")
    write(tmp_path, "svc.yaml.bak", "not: [valid yaml\n")
    desired = load_directory(tmp_path, kinds=kind_table())
    assert [r.name for r in desired.resources] == ["api"]
    assert manifest_files(tmp_path) == [tmp_path / "svc.yaml"]


def test_missing_directory_is_one_error(tmp_path: Path) -> None:
    """A directory that does not exist is a single error naming it."""
    missing = tmp_path / "nope"
    assert [str(e) for e in errors_of(missing)] == [f"{missing}: no such directory"]


def test_a_file_is_not_a_directory(tmp_path: Path) -> None:
    """A path to a file is rejected as not a directory."""
    path = write(tmp_path, "svc.yaml", ECS.format(name="api"))
    assert [str(e) for e in errors_of(path)] == [f"{path}: not a directory"]


def test_empty_directory_is_a_valid_empty_state(tmp_path: Path) -> None:
    """An empty directory is valid and declares nothing (nothing is managed)."""
    desired = load_directory(tmp_path, kinds=kind_table())
    assert isinstance(desired, DesiredState)
    assert desired.resources == ()


def test_revision_is_a_content_hash_outside_git(tmp_path: Path) -> None:
    """Outside a git checkout the revision is a content hash that changes with the content."""
    write(tmp_path, "svc.yaml", ECS.format(name="api"))
    first = load_directory(tmp_path, kinds=kind_table()).revision
    assert first == load_directory(tmp_path, kinds=kind_table()).revision
    assert first.startswith("sha256:")
    write(tmp_path, "svc.yaml", ECS.format(name="api").replace("desiredCount: 2", "desiredCount: 3"))
    assert load_directory(tmp_path, kinds=kind_table()).revision != first


def test_the_invalid_revision_is_known(tmp_path: Path) -> None:
    """A rejected directory still carries its revision, so the rejection can be recorded."""
    write(tmp_path, "svc.yaml", ECS.format(name="api") + "  replicas: 1\n")
    with pytest.raises(InvalidDesiredState) as info:
        load_directory(tmp_path, kinds=kind_table())
    assert info.value.revision is not None


# --- the examples -----------------------------------------------------------------------------


def test_examples_are_valid_and_cover_every_kind() -> None:
    """examples/desired-state is a valid desired state holding every kind."""
    desired = load_directory(EXAMPLES, kinds=kind_table())
    assert {r.kind for r in desired.resources} == {d.kind for d in KINDS}
    services = {r.name: r.manifest for r in desired.of_kind(Kind("ECSService"))}
    assert set(services) == {"api", "web", "worker"}
    worker = services["worker"]
    assert isinstance(worker, ECSService)
    assert worker.spec.desiredCount is None
    assert worker.spec.autoscaling is not None


def test_unreadable_file_is_one_error_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A manifest that cannot be read rejects the directory with one error naming that file."""
    write(tmp_path, "ok.yaml", ECS.format(name="api"))
    locked = write(tmp_path, "team/locked.yaml", ECS.format(name="web"))
    real_open = os.open

    def open_(path: str | os.PathLike[str], flags: int, mode: int = 0o777) -> int:
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", open_)
    assert [str(e) for e in errors_of(tmp_path)] == ["team/locked.yaml: cannot read: Permission denied"]


def test_two_manifests_for_one_service_conflict(tmp_path: Path) -> None:
    """Two ECSService manifests managing one service (cluster by name or ARN) are an error naming both."""
    write(tmp_path, "a.yaml", ECS.format(name="api"))
    arn = "arn:aws:ecs:us-east-1:123456789012:cluster/prod"
    other = ECS.format(name="api-copy").replace("prod-api-copy", "prod-api")
    write(tmp_path, "b.yaml", other.replace("cluster: prod", f"cluster: {arn}"))
    error = only_error(tmp_path)
    assert (error.file, error.line, error.field) == ("b.yaml", 1, "spec.service")
    assert "'api'" in error.message
    assert "a.yaml:1" in error.message


def test_same_service_name_in_two_clusters_is_fine(tmp_path: Path) -> None:
    """One service name in two clusters is two services."""
    write(tmp_path, "a.yaml", ECS.format(name="api"))
    other = ECS.format(name="api-eu").replace("prod-api-eu", "prod-api")
    write(tmp_path, "b.yaml", other.replace("cluster: prod", "cluster: prod-eu"))
    assert len(load_directory(tmp_path, kinds=kind_table()).resources) == 2


SNAPSHOTS = """\
apiVersion: homeostat/v1
kind: SnapshotRetention
metadata:
  name: {name}
spec:
  dbClusterIdentifier: {cluster}
  snapshotPrefix: {prefix}
  retention: {{maxAge: 7d}}
"""


@pytest.mark.parametrize(
    ("cluster", "prefix", "error"),
    [
        pytest.param("prod", "prod-manual-", True, id="same-prefix"),
        pytest.param("PROD", "prod-manual-weekly-", True, id="longer-prefix-other-case"),
        pytest.param("prod", "prod-", True, id="shorter-prefix"),
        pytest.param("prod", "prod-weekly-", False, id="disjoint-prefix"),
        pytest.param("staging", "prod-manual-", True, id="other-cluster-same-prefix"),
        pytest.param("staging", "staging-manual-", False, id="other-cluster-own-prefix"),
    ],
)
def test_overlapping_snapshot_prefixes_are_an_error(
    tmp_path: Path, cluster: str, prefix: str, error: bool
) -> None:
    """Two retention policies that could own or name one snapshot are rejected, naming both places."""
    write(tmp_path, "a.yaml", SNAPSHOTS.format(name="daily", cluster="prod", prefix="prod-manual-"))
    write(tmp_path, "b.yaml", SNAPSHOTS.format(name="other", cluster=cluster, prefix=prefix))
    if not error:
        assert len(load_directory(tmp_path, kinds=kind_table()).resources) == 2
        return
    found = only_error(tmp_path)
    assert (found.file, found.line, found.field) == ("b.yaml", 1, "spec.snapshotPrefix")
    assert "a.yaml:1" in found.message


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        pytest.param(
            "apiVersion: homeostat/v1\nkind: [ECSService]\nmetadata: {name: a}\nspec: {}\n",
            "kind",
            "unknown kind",
            id="kind-is-a-list",
        ),
        pytest.param(
            "apiVersion: homeostat/v1\nkind: AlarmActions\nmetadata:\n  name: b\n  labels: &a {k: *a}\n"
            "spec: {alarmNamePrefix: x, actionsEnabled: true}\n",
            "metadata.labels.k",
            "YAML aliases",
            id="self-referencing-alias",
        ),
        pytest.param(
            "apiVersion: homeostat/v1\nkind: SnapshotRetention\nmetadata: {name: c}\n"
            "spec: {dbClusterIdentifier: x, snapshotPrefix: x-, retention: {maxAge: 999999999w}}\n",
            "spec.retention.maxAge",
            "longer than 10 years",
            id="huge-duration",
        ),
    ],
)
def test_hostile_input_is_a_located_validation_error_not_a_crash(
    tmp_path: Path, text: str, field: str, message: str
) -> None:
    """Inputs that used to raise TypeError, RecursionError or OverflowError reject the revision cleanly."""
    (tmp_path / "bad.yaml").write_text(text)
    error = only_error(tmp_path)
    assert error.field == field
    assert message in error.message


def test_nested_aliases_are_refused_quickly(tmp_path: Path) -> None:
    """A 'billion laughs' document is one error, found without expanding it."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        name, previous = chr(97 + level), chr(96 + level)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    (tmp_path / "laughs.yaml").write_text("\n".join(lines) + "\n")
    assert "YAML aliases" in only_error(tmp_path).message
