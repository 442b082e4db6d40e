"""`validate PATH...`: files and directories as a pre-commit hook or a person passes them.

Cross-document rules apply across everything given, errors name the paths as
given, and an empty desired state is valid with a warning.
"""

import re
import textwrap
from pathlib import Path

import pytest
import yaml

from homeostat.operator.cli import main
from homeostat.operator.options import parse_settings

ROOT = Path(__file__).resolve().parent.parent
ECS = """\
apiVersion: homeostat/v1
kind: ECSService
metadata:
  name: {name}
spec:
  cluster: prod
  service: prod-{service}
  desiredCount: 2
"""


def write(directory: Path, relative: str, name: str, service: str | None = None) -> Path:
    path = directory / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(ECS.format(name=name, service=service or name)))
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], list[str]]:
    capsys.readouterr()
    code = main(["validate", *args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out.splitlines(), captured.err.splitlines()


def test_single_files_are_validated_and_named_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A hook passes changed files relative to the repository root; errors name them so."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "services/api.yaml", "api")
    bad = write(tmp_path, "services/web.yml", "web")
    bad.write_text(bad.read_text() + "  replicas: 1\n")
    code, out, err = run(capsys, "services/api.yaml")
    assert (code, err) == (0, [])
    assert out[0].startswith("valid: 1 resources, revision sha256:")
    code, out, err = run(capsys, "services/api.yaml", "services/web.yml")
    assert (code, out, err) == (1, [], ["services/web.yml:9: spec.replicas: unknown field"])


def test_cross_document_rules_apply_across_everything_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two files given separately that manage one service conflict, naming both as given."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "a/api.yaml", "api")
    write(tmp_path, "b/copy.yaml", "api-copy", service="api")
    code, _, err = run(capsys, "a", "b/copy.yaml")
    assert code == 1
    [line] = err
    assert line.startswith("b/copy.yaml:1: spec.service: ")
    assert "a/api.yaml:1" in line


def test_a_file_given_with_its_directory_is_read_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`validate dir dir/api.yaml` is not a duplicate of itself."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "dir/api.yaml", "api")
    write(tmp_path, "dir/web.yaml", "web")
    code, out, err = run(capsys, "dir", "dir/api.yaml", "./dir/api.yaml")
    assert (code, err) == (0, [])
    assert out[0].startswith("valid: 2 resources")


def test_paths_that_do_not_exist_or_cannot_be_read_are_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """One line per path: a missing file, a missing directory, a dangling link inside a directory."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "d/api.yaml", "api")
    (tmp_path / "d" / "gone.yaml").symlink_to("nowhere.yaml")
    code, _, err = run(capsys, "d", "missing.yaml", "nodir")
    assert code == 1
    assert err == [
        "d/gone.yaml: cannot read: dangling symlink to nowhere.yaml",
        "missing.yaml: no such file",
        "nodir: no such directory",
    ]


def test_an_empty_desired_state_is_valid_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No manifests: exit 0, but say on stderr that nothing would be managed."""
    (tmp_path / "README.md").write_text("not a manifest\n")
    code, out, err = run(capsys, str(tmp_path))
    assert code == 0
    assert out[0].startswith("valid: 0 resources")
    assert err == [f"homeostat: warning: no manifests in {tmp_path}: nothing would be managed"]


def test_without_a_path_the_desired_state_option_is_validated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No PATH: --desired-state, errors joined to it as today."""
    path = write(tmp_path, "svc.yaml", "api")
    path.write_text(path.read_text() + "  replicas: 1\n")
    code, _, err = run(capsys, "--desired-state", str(tmp_path))
    assert (code, err) == (1, [f"{tmp_path}/svc.yaml:9: spec.replicas: unknown field"])


def test_the_pre_commit_hook_validates_changed_manifests() -> None:
    """The shipped hook runs `homeostat validate` on *.yaml / *.yml files, and its entry parses."""
    [hook] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "homeostat-validate"
    assert hook["entry"] == "homeostat validate"
    matches = re.compile(hook["files"]).search
    assert matches("desired-state/api.yaml")
    assert matches("desired-state/web.yml")
    assert not matches("README.md")
    assert not matches("api.yaml.bak")
    settings = parse_settings([*hook["entry"].split()[1:], "a.yaml", "b.yml"], environ={})
    assert settings is not None
    assert settings.paths == (Path("a.yaml"), Path("b.yml"))
