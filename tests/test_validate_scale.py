"""`validate` at scale and the C loader: correct figures here, timings in benchmarks/validate_scale.py.

No timed asserts: the machine is shared. What is asserted is what could break
at scale: every document counted, an error deep in a large state located
exactly, the size cap refusing a large file unread, and the C loader giving
the same lines as the pure-Python one.
"""

from pathlib import Path

import pytest
import yaml

from homeostat.desired_state import parsing
from homeostat.desired_state.loading import load_directory
from homeostat.desired_state.state import InvalidDesiredState
from homeostat.operator.cli import main
from homeostat.reconcilers.registry import kind_table

from .conftest import EXAMPLES

DOCUMENT = """apiVersion: homeostat/v1
kind: ECSService
metadata:
  name: svc-{i:05d}
spec:
  cluster: cluster-{cluster}
  service: svc-{i:05d}
  desiredCount: 2
"""
LINES_PER_DOCUMENT = DOCUMENT.count("\n") + 1  # with the "---" separator


def write_state(directory: Path, count: int, per_file: int = 100) -> None:
    directory.mkdir(exist_ok=True)
    for start in range(0, count, per_file):
        docs = [DOCUMENT.format(i=i, cluster=i % 10) for i in range(start, min(start + per_file, count))]
        (directory / f"part-{start // per_file:03d}.yaml").write_text("---\n".join(docs))


def test_ten_thousand_documents_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """10,000 documents in 100 files: all counted, exit 0."""
    write_state(tmp_path, 10_000)
    assert main(["validate", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("valid: 10000 resources, revision ")


def test_an_error_deep_in_a_large_state_is_located(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Document 7,777 (file 77, its 78th document) has an unknown field: one line, the exact line."""
    write_state(tmp_path, 10_000)
    part = tmp_path / "part-077.yaml"
    part.write_text(part.read_text().replace("name: svc-07777\n", "name: svc-07777\n  owner: x\n"))
    assert main(["validate", str(tmp_path)]) == 1
    line = 77 * LINES_PER_DOCUMENT + 5
    expected = f"{tmp_path}/part-077.yaml:{line}: metadata.owner: unknown field"
    assert capsys.readouterr().err.splitlines() == [expected]


def test_a_26_mb_multi_document_file_is_refused_by_the_cap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """200,000 documents in one 26 MB file: refused by the size cap, not parsed."""
    chunk = "---\n".join(DOCUMENT.format(i=i, cluster=0) for i in range(1_000)) + "---\n"
    with (tmp_path / "all.yaml").open("w") as handle:
        while handle.tell() < 26_000_000:
            handle.write(chunk)
    size = (tmp_path / "all.yaml").stat().st_size
    assert main(["validate", str(tmp_path)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{tmp_path}/all.yaml: cannot read: {size} bytes, over the 10 MiB limit per file"
    ]


def test_the_c_loader_is_used_where_libyaml_is_installed() -> None:
    """PyYAML's wheels ship libyaml; the loader must pick it (the pure-Python one is 7x slower)."""
    if not yaml.__with_libyaml__:
        pytest.skip("PyYAML was built without libyaml")
    assert parsing._Loader is yaml.CSafeLoader


BROKEN = """\
apiVersion: homeostat/v1
kind: ECSService
metadata:
  name: api
spec:
  cluster: prod
  service: prod-api
  desiredCount: "two"
  extra:
    nested: [1, 2]
---
apiVersion: homeostat/v1
kind: ECSService
metadata: {name: web, labels: {team: a, team: b}}
---
apiVersion: homeostat/v1
kind: MaintenanceWindow
metadata: {name: w}
spec:
  schedule: "0 2 * * 8"
  duration: 4h
---
key: [unclosed
"""


def errors(directory: Path) -> list[str]:
    with pytest.raises(InvalidDesiredState) as info:
        load_directory(directory, kinds=kind_table())
    return [str(e) for e in info.value.errors]


def test_the_c_loader_keeps_every_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Duplicate keys, field errors and a syntax error are reported at the same lines by both loaders."""
    (tmp_path / "broken.yaml").write_text(BROKEN)
    fast = errors(tmp_path)
    monkeypatch.setattr(parsing, "_Loader", yaml.SafeLoader)
    slow = errors(tmp_path)
    assert fast[:-1] == slow[:-1]  # the syntax error's wording is libyaml's or PyYAML's own
    assert (
        [e.split(": ")[0] for e in fast]
        == [e.split(": ")[0] for e in slow]
        == [
            "broken.yaml:8",
            "broken.yaml:9",
            "broken.yaml:14",
            "broken.yaml:20",
            "broken.yaml:24",
        ]
    )


def test_both_loaders_read_the_examples_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same resources, with the same source lines, whichever loader reads them."""
    fast = load_directory(EXAMPLES, kinds=kind_table()).resources
    monkeypatch.setattr(parsing, "_Loader", yaml.SafeLoader)
    assert load_directory(EXAMPLES, kinds=kind_table()).resources == fast
