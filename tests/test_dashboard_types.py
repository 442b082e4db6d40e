"""The Grafana dashboard type-checks against Grafana's published dashboard types (@grafana/schema).

Grafana publishes the shape of a dashboard as TypeScript types; an importable dashboard must satisfy
them (required fields included, such as `text` and `value` of a variable's `current`). The test writes
the dashboard JSON into a TypeScript file typed with those types and runs the TypeScript compiler on it.
The packages are pinned in deploy/grafana/typecheck/package.json and installed by
deploy/grafana/ensure-typecheck.sh (`make test` runs it).
"""

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.prometheus_tools import dashboard

pytestmark = pytest.mark.e2e

TYPECHECK = REPO / "deploy" / "grafana" / "typecheck"
TSC = TYPECHECK / "node_modules" / ".bin" / "tsc"
ENSURE = REPO / "deploy" / "grafana" / "ensure-typecheck.sh"


def type_errors(board: dict[str, Any], workdir: Path) -> list[str]:
    """The TypeScript compiler's errors for `board` typed as Grafana's Dashboard (empty when it checks)."""
    if not TSC.exists():
        pytest.fail(
            f"TypeScript and @grafana/schema are not installed: run `{ENSURE.relative_to(REPO)}` "
            "(`make test` does this).",
            pytrace=False,
        )
    source = (TYPECHECK / "dashboard.ts").read_text()
    # `__inputs`/`__requires` are the envelope of an export "for sharing externally": Grafana's importer
    # reads and drops them before it stores the dashboard, so they are not part of the dashboard's type.
    model = {key: value for key, value in board.items() if not key.startswith("__")}
    # Inside the typecheck directory, so that `@grafana/schema` resolves from its node_modules.
    target = TYPECHECK / f"board-{workdir.name}.ts"
    target.write_text(
        f"{source}\nconst board: Json<Dashboard> = {json.dumps(model, indent=2)};\nexport {{ board }};\n"
    )
    try:
        result = subprocess.run(
            [
                str(TSC),
                "--noEmit",
                "--strict",
                "--skipLibCheck",
                "--moduleResolution",
                "node",
                "--module",
                "esnext",
                "--target",
                "es2020",
                str(target),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        target.unlink()
    return [line for line in result.stdout.splitlines() if "error TS" in line]


def test_the_dashboard_satisfies_grafanas_dashboard_types(tmp_path: Path) -> None:
    """deploy/grafana/homeostat-dashboard.json type-checks as @grafana/schema's Dashboard."""
    assert type_errors(dashboard(), tmp_path) == []


def test_a_variable_without_current_text_and_value_is_refused(tmp_path: Path) -> None:
    """The check bites: `"current": {}` on a template variable lacks the required text and value."""
    board = copy.deepcopy(dashboard())
    board["templating"]["list"][0]["current"] = {}
    errors = type_errors(board, tmp_path)
    assert len(errors) == 1
    assert "text, value" in errors[0]


def test_an_unknown_panel_field_is_refused(tmp_path: Path) -> None:
    """Misspelt fields are errors, not ignored: `gridPosition` instead of `gridPos`."""
    board = copy.deepcopy(dashboard())
    board["panels"][0]["gridPosition"] = board["panels"][0]["gridPos"]
    errors = type_errors(board, tmp_path)
    assert errors
    assert any("gridPosition" in e for e in errors)
