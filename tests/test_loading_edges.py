"""Hostile and odd inputs at the loader's edge: each one rejects the revision with a located error.

Nothing is skipped silently (a skipped file would quietly unmanage what it
declared) and nothing escapes as a traceback: bytes that are not UTF-8, NUL
bytes, binary files, unreadable directories and files, dangling symlinks,
symlink loops, over-size files, YAML tags, alias bombs and deep nesting all end
as `InvalidDesiredState`, through `load_directory` and through `validate`.
"""

import contextlib
import errno
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from homeostat.desired_state import parsing, reading
from homeostat.desired_state.identifiers import Revision
from homeostat.desired_state.loading import DirectoryLoader, load_directory, load_files, manifest_files
from homeostat.desired_state.state import DesiredState, InvalidDesiredState
from homeostat.operator.cli import main
from homeostat.reconcilers.registry import kind_table
from tests.test_manifests import ECS


def write(directory: Path, relative: str, content: str | bytes) -> Path:
    path = directory / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(textwrap.dedent(content))
    else:
        path.write_bytes(content)
    return path


def errors_of(directory: Path) -> list[str]:
    with pytest.raises(InvalidDesiredState) as info:
        load_directory(directory, kinds=kind_table())
    return [str(e) for e in info.value.errors]


def validate_lines(capsys: pytest.CaptureFixture[str], *paths: Path) -> list[str]:
    """`validate PATH...` in-process: exit 1, one stderr line per error, no traceback."""
    capsys.readouterr()
    assert main(["validate", *map(str, paths)]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert captured.out == ""
    return captured.err.splitlines()


# --- bytes that are not text ---------------------------------------------------------------------

HOSTILE_BYTES = {
    "non-utf8": (ECS.format(name="api") + "  # caf\xe9\n").encode("latin-1"),
    "nul": ECS.format(name="api").encode() + b"  # \x00\n",
    "binary": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01",
    "control-character": ECS.format(name="api").encode() + b"  # \x07 bell\n",
}
EXPECTED = {
    "non-utf8": "svc.yaml:9: cannot read: not valid UTF-8 (byte 0xe9 at byte offset 131)",
    "nul": "svc.yaml:9: cannot read: NUL byte at byte offset 128 (a binary file?)",
    "binary": "svc.yaml:3: cannot read: NUL byte at byte offset 8 (a binary file?)",
    "control-character": "svc.yaml:9: cannot read: control character U+0007 at byte offset 128",
}


@pytest.mark.parametrize("case", sorted(HOSTILE_BYTES))
def test_bytes_that_are_not_text_are_a_located_error(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not UTF-8, a NUL byte, a binary file or a control character: `file:line: cannot read: ...`."""
    write(tmp_path, "ok.yaml", ECS.format(name="web"))
    write(tmp_path, "svc.yaml", HOSTILE_BYTES[case])
    assert errors_of(tmp_path) == [EXPECTED[case]]
    assert validate_lines(capsys, tmp_path) == [f"{tmp_path}/{EXPECTED[case]}"]


def test_undecodable_bytes_keep_the_revision(tmp_path: Path) -> None:
    """A file that was read but is not text rejects a known revision (the daemon records it)."""
    write(tmp_path, "svc.yaml", HOSTILE_BYTES["nul"])
    with pytest.raises(InvalidDesiredState) as info:
        load_directory(tmp_path, kinds=kind_table())
    assert info.value.revision is not None


def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    """Editors on Windows write a BOM; it is valid UTF-8 and YAML ignores it."""
    write(tmp_path, "svc.yaml", b"\xef\xbb\xbf" + ECS.format(name="api").encode())
    assert [r.name for r in load_directory(tmp_path, kinds=kind_table())] == ["api"]


# --- what the walk cannot read -------------------------------------------------------------------


@pytest.fixture
def refuse(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], None]:
    """Make os.scandir and os.open refuse one path as a non-root user would see it (tests run as root)."""
    refused: set[str] = set()
    real_scandir, real_open = os.scandir, os.open

    def scandir(path: str | os.PathLike[str]) -> Iterator[os.DirEntry[str]]:
        if os.fspath(path) in refused:
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_scandir(path)

    def open_(path: str | os.PathLike[str], flags: int, mode: int = 0o777) -> int:
        if os.fspath(path) in refused:
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "open", open_)
    return lambda path: refused.add(os.fspath(path))


def test_an_unreadable_subdirectory_is_an_error(
    tmp_path: Path, refuse: Callable[[Path], None], capsys: pytest.CaptureFixture[str]
) -> None:
    """A subdirectory that cannot be listed would unmanage everything in it: an error naming it."""
    write(tmp_path, "ok.yaml", ECS.format(name="api"))
    write(tmp_path, "team/web.yaml", ECS.format(name="web"))
    refuse(tmp_path / "team")
    assert errors_of(tmp_path) == ["team: cannot read: Permission denied"]
    assert validate_lines(capsys, tmp_path) == [f"{tmp_path}/team: cannot read: Permission denied"]


def test_an_unreadable_file_is_an_error(tmp_path: Path, refuse: Callable[[Path], None]) -> None:
    """One error per cause: two unreadable files are two errors."""
    write(tmp_path, "ok.yaml", ECS.format(name="api"))
    refuse(write(tmp_path, "a.yaml", ECS.format(name="a")))
    refuse(write(tmp_path, "team/b.yml", ECS.format(name="b")))
    assert errors_of(tmp_path) == [
        "a.yaml: cannot read: Permission denied",
        "team/b.yml: cannot read: Permission denied",
    ]


# Root reads a directory whatever its mode (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH): as root the
# validating process runs without those two capabilities, so the mode counts as for anyone else.
WITHOUT_DAC = ("setpriv", "--bounding-set", "-dac_override,-dac_read_search") if os.geteuid() == 0 else ()


@pytest.mark.e2e
def test_an_unreadable_subdirectory_by_mode_is_an_error(tmp_path: Path) -> None:
    """The same with a real chmod and a real `homeostat validate` process."""
    write(tmp_path, "team/web.yaml", ECS.format(name="web"))
    (tmp_path / "team").chmod(0)
    try:
        result = subprocess.run(
            [*WITHOUT_DAC, sys.executable, "-m", "homeostat", "validate", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        (tmp_path / "team").chmod(0o755)
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [f"{tmp_path}/team: cannot read: Permission denied"]


def test_a_dangling_symlink_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A link to nothing may be a manifest that was meant to be there."""
    write(tmp_path, "ok.yaml", ECS.format(name="api"))
    (tmp_path / "web.yaml").symlink_to(tmp_path / "missing.yaml")
    expected = f"web.yaml: cannot read: dangling symlink to {tmp_path / 'missing.yaml'}"
    assert errors_of(tmp_path) == [expected]
    assert validate_lines(capsys, tmp_path) == [f"{tmp_path}/{expected}"]


def test_a_symlink_loop_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`loop.yaml -> loop.yaml` is reported, not skipped."""
    write(tmp_path, "ok.yaml", ECS.format(name="api"))
    (tmp_path / "loop.yaml").symlink_to("loop.yaml")
    assert errors_of(tmp_path) == ["loop.yaml: cannot read: symlink loop"]
    assert validate_lines(capsys, tmp_path) == [f"{tmp_path}/loop.yaml: cannot read: symlink loop"]


def test_read_errors_and_manifest_errors_are_reported_together(tmp_path: Path) -> None:
    """Every error at once: what could not be read first, then what was read but is invalid."""
    write(tmp_path, "svc.yaml", ECS.format(name="api") + "  replicas: 1\n")
    write(tmp_path, "bin.yaml", b"\x00")
    (tmp_path / "loop.yaml").symlink_to("loop.yaml")
    assert errors_of(tmp_path) == [
        "loop.yaml: cannot read: symlink loop",
        "bin.yaml:1: cannot read: NUL byte at byte offset 0 (a binary file?)",
        "svc.yaml:9: spec.replicas: unknown field",
    ]


def test_a_symlinked_directory_loop_is_an_error(tmp_path: Path) -> None:
    """A directory link back to an ancestor is reported once, not walked forever."""
    write(tmp_path, "team/web.yaml", ECS.format(name="web"))
    (tmp_path / "team" / "again").symlink_to(tmp_path)
    assert errors_of(tmp_path) == [
        "team/again: cannot read: symlink loop (a link to a directory that contains it)"
    ]


def test_a_symlink_to_an_outer_directory_is_a_loop(tmp_path: Path) -> None:
    """A link to a directory above the desired state (such as `/`) would walk the whole disk."""
    desired = tmp_path / "desired"
    write(desired, "svc.yaml", ECS.format(name="api"))
    (desired / "root").symlink_to("/")
    assert errors_of(desired) == ["root: cannot read: symlink loop (a link to a directory that contains it)"]


def test_symlinked_files_and_directories_are_read(tmp_path: Path) -> None:
    """A link to a manifest or to a directory of manifests is followed: what it holds is managed."""
    shared = tmp_path / "shared"
    write(shared, "web.yaml", ECS.format(name="web"))
    write(shared, "api.yaml", ECS.format(name="api"))
    desired = tmp_path / "desired"
    desired.mkdir()
    (desired / "team").symlink_to(shared)
    (desired / "alias.yml").symlink_to(write(tmp_path, "elsewhere/db.yaml", ECS.format(name="db")))
    write(desired, "worker.yaml", ECS.format(name="worker"))
    names = ["alias.yml", "team/api.yaml", "team/web.yaml", "worker.yaml"]
    assert manifest_files(desired) == [desired / name for name in names]
    assert [r.name for r in load_directory(desired, kinds=kind_table())] == ["db", "api", "web", "worker"]


def test_a_fifo_named_yaml_is_an_error_not_a_hang(tmp_path: Path) -> None:
    """Opening a FIFO would block the daemon forever; it is not a regular file."""
    os.mkfifo(tmp_path / "pipe.yaml")
    assert errors_of(tmp_path) == ["pipe.yaml: cannot read: not a regular file"]


def test_hidden_entries_stay_skipped(tmp_path: Path) -> None:
    """Hidden folders and files (.git, editor locks such as `.#svc.yaml`) are never read, even broken."""
    write(tmp_path, "svc.yaml", ECS.format(name="api"))
    write(tmp_path, ".git/config.yaml", b"\x00\xff")
    (tmp_path / ".#svc.yaml").symlink_to("user@host.1234")
    (tmp_path / ".loop.yaml").symlink_to(".loop.yaml")
    assert [r.name for r in load_directory(tmp_path, kinds=kind_table())] == ["api"]


def test_upper_case_suffixes_are_manifests(tmp_path: Path) -> None:
    """`x.YAML` and `x.YML` are manifests (the suffix is case-insensitive), not silently ignored."""
    write(tmp_path, "a.YAML", ECS.format(name="a"))
    write(tmp_path, "b.Yml", ECS.format(name="b"))
    assert [r.name for r in load_directory(tmp_path, kinds=kind_table())] == ["a", "b"]


# --- size ----------------------------------------------------------------------------------------


def test_a_file_over_10_mib_is_refused_unread(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A real 10 MiB + 1 byte file (sparse: no disk) is one error, checked before reading."""
    write(tmp_path, "ok.yaml", ECS.format(name="api"))
    with (tmp_path / "big.yaml").open("wb") as handle:
        handle.truncate(10 * 1024 * 1024 + 1)
    expected = "big.yaml: cannot read: 10485761 bytes, over the 10 MiB limit per file"
    assert errors_of(tmp_path) == [expected]
    assert validate_lines(capsys, tmp_path) == [f"{tmp_path}/{expected}"]


def test_a_file_of_exactly_the_limit_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The limit is inclusive; a file that grows after the size check is still cut at limit + 1."""
    content = ECS.format(name="api").encode()
    write(tmp_path, "svc.yaml", content)
    monkeypatch.setattr(reading, "MAX_FILE_BYTES", len(content))
    assert [r.name for r in load_directory(tmp_path, kinds=kind_table())] == ["api"]
    monkeypatch.setattr(reading, "MAX_FILE_BYTES", len(content) - 1)
    assert errors_of(tmp_path) == [
        f"svc.yaml: cannot read: {len(content)} bytes, over the {len(content) - 1} bytes limit per file"
    ]


# --- YAML that is not data -----------------------------------------------------------------------


def test_a_yaml_tag_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`!!python/object` is an error at its line, never executed."""
    write(tmp_path, "evil.yaml", "kind: ECSService\nspec: !!python/object/apply:os.system [true]\n")
    [line] = validate_lines(capsys, tmp_path)
    assert line.startswith(f"{tmp_path}/evil.yaml:2: invalid YAML: unsupported YAML tag")


def test_an_alias_bomb_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Nested aliases of lists ("billion laughs") are refused at once, not expanded."""
    levels = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    levels += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    write(tmp_path, "bomb.yaml", "\n".join(levels) + "\n")
    lines = validate_lines(capsys, tmp_path)
    assert lines == [f"{tmp_path}/bomb.yaml:2: a1[0]: YAML aliases of mappings and lists are not supported"]


@pytest.mark.parametrize("loader", [yaml.SafeLoader, getattr(yaml, "CSafeLoader", yaml.SafeLoader)])
@pytest.mark.parametrize("opener", ["[", "- "])
def test_deep_nesting_is_an_error_not_a_crash(
    tmp_path: Path, opener: str, loader: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    """100,000 levels overflow the C stack of an older libyaml's composer (a segfault) and the
    pure-Python composer's recursion limit (RecursionError); refused before composing."""
    monkeypatch.setattr(parsing, "_Loader", loader)
    write(tmp_path, "ok.yaml", ECS.format(name="api"))
    write(tmp_path, "deep.yaml", ECS.format(name="web") + "---\n" + opener * 100_000 + "x\n")
    [error] = errors_of(tmp_path)
    # Refused by homeostat's own depth limit, or first by libyaml's (0.2.5 has one, older ones none).
    assert error.startswith("deep.yaml:10: invalid YAML: ")
    assert "nest" in error


def test_nesting_past_64_levels_is_refused(tmp_path: Path) -> None:
    """Manifests nest about 5 deep; past 64 levels the document is refused before it is composed."""
    write(tmp_path, "deep.yaml", ECS.format(name="web") + "---\n" + "[" * 65 + "]" * 65 + "\n")
    assert errors_of(tmp_path) == ["deep.yaml:10: invalid YAML: nested deeper than 64 levels"]
    write(tmp_path, "deep.yaml", "[" * 64 + "]" * 64 + "\n")
    assert errors_of(tmp_path)[0].startswith("deep.yaml:1: a manifest must be a mapping")


def test_documents_before_a_syntax_error_are_still_checked(tmp_path: Path) -> None:
    """Every error of a file is reported: those of its valid-YAML documents and the syntax error."""
    write(tmp_path, "svc.yaml", ECS.format(name="api") + "  replicas: 1\n---\nkey: [unclosed\n")
    assert [e.split(": ")[0] for e in errors_of(tmp_path)] == ["svc.yaml:9", "svc.yaml:12"]


def test_an_impossible_date_is_a_located_error(tmp_path: Path) -> None:
    """YAML reads 2026-13-45 as a timestamp; the constructor's ValueError is an error at its document."""
    write(tmp_path, "svc.yaml", ECS.format(name="api") + "  until: 2026-13-45\n")
    [error] = errors_of(tmp_path)
    assert error.startswith("svc.yaml:1: invalid YAML: month must be in 1..12")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400) | st.text(max_size=300).map(str.encode))
def test_any_bytes_are_a_state_or_invalid(content: bytes) -> None:
    """Whatever bytes a .yaml file holds, the loader returns a state or raises InvalidDesiredState."""
    with contextlib.suppress(InvalidDesiredState):
        assert isinstance(
            load_files({Path("any.yaml"): content}, Path("."), Revision("test"), kinds=kind_table()),
            DesiredState,
        )


# --- re-parsing only what changed ----------------------------------------------------------------


def test_the_directory_loader_parses_again_only_when_bytes_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon reads every pass but parses only new bytes; a rejection is remembered too."""
    from homeostat.desired_state import loading

    parsed: list[int] = []
    real = loading.load_files

    def counting(*args: object, **kwargs: object) -> DesiredState:
        parsed.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(loading, "load_files", counting)
    write(tmp_path, "svc.yaml", ECS.format(name="api"))
    loader = DirectoryLoader(tmp_path, kind_table())
    files, first = loader.load()
    assert files == {Path("svc.yaml"): ECS.format(name="api").encode()}
    assert loader.load()[1] is first
    assert len(parsed) == 1
    write(tmp_path, "svc.yaml", ECS.format(name="api") + "  replicas: 1\n")
    for _ in range(2):
        with pytest.raises(InvalidDesiredState) as info:
            loader.load()
        assert [str(e) for e in info.value.errors] == ["svc.yaml:9: spec.replicas: unknown field"]
    assert len(parsed) == 2
    write(tmp_path, "svc.yaml", ECS.format(name="api"))
    assert loader.load()[1].resources == first.resources
    assert len(parsed) == 3
    monkeypatch.setattr(loading, "revision_of", lambda *_args, **_kwargs: Revision("commit-2"))
    assert loader.load()[1].revision == "commit-2"  # a commit that changed no manifest: no parse
    assert len(parsed) == 3


def test_the_directory_loader_reports_read_errors_every_time(tmp_path: Path) -> None:
    """What cannot be read is never served from the cache."""
    (tmp_path / "loop.yaml").symlink_to("loop.yaml")
    loader = DirectoryLoader(tmp_path, kind_table())
    for _ in range(2):
        with pytest.raises(InvalidDesiredState) as info:
            loader.load()
        assert [str(e) for e in info.value.errors] == ["loop.yaml: cannot read: symlink loop"]
