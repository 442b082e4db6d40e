"""The last-known-good store: the last valid revision kept in the history database.

Specification (contract section 4): each newly loaded valid revision is
saved with the bytes of its manifests; a daemon starting while the directory
is invalid rebuilds it with the loader's own parsing. A stored revision that
no longer validates, or cannot be read, is not enforced.
"""

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
import structlog
from alembic import command
from alembic.config import Config
from hypothesis import given
from hypothesis import strategies as st

from homeostat.desired_state.identifiers import Revision
from homeostat.desired_state.loading import load_directory, read_directory
from homeostat.operator.history import MIGRATIONS, HistoryStore
from homeostat.operator.history_schema import last_known_good
from homeostat.operator.last_good import LastKnownGood, decode_files, encode_files
from homeostat.reconcilers.registry import kind_table
from tests.conftest import EXAMPLES
from tests.gitops_helpers import service_manifest

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def store(tmp_path: Path) -> tuple[HistoryStore, LastKnownGood]:
    history = HistoryStore(f"sqlite:///{tmp_path / 'history.db'}")
    return history, LastKnownGood(history.engine, structlog.get_logger())


def test_a_saved_revision_is_restored_whole(tmp_path: Path) -> None:
    """The example directory saved and restored gives the same resources, revision and sources."""
    files, revision = read_directory(EXAMPLES)
    history, last_good = store(tmp_path)
    assert last_good.save(revision, EXAMPLES, files, NOW)
    _, fresh = store(tmp_path)
    restored = fresh.restore(tmp_path / "gone")
    assert restored is not None
    assert restored.revision == revision
    assert restored.directory == tmp_path / "gone"
    assert restored.resources == load_directory(EXAMPLES, kinds=kind_table()).resources
    saved = fresh.load()
    assert saved is not None
    assert (saved.directory, saved.saved_at, dict(saved.files)) == (str(EXAMPLES), NOW, files)
    history.close()


def test_only_the_newest_revision_is_kept(tmp_path: Path) -> None:
    """Saving a second revision replaces the first: one slot per database."""
    history, last_good = store(tmp_path)
    last_good.save(
        Revision("sha256:aaaa"), tmp_path, {Path("a.yaml"): service_manifest("a", 1).encode()}, NOW
    )
    last_good.save(
        Revision("sha256:bbbb"), tmp_path, {Path("b.yaml"): service_manifest("b", 2).encode()}, NOW
    )
    with history.engine.connect() as connection:
        rows = connection.execute(sa.select(last_known_good.c.revision)).all()
    assert [row.revision for row in rows] == ["sha256:bbbb"]
    restored = last_good.restore(tmp_path)
    assert restored is not None
    assert [r.name for r in restored.resources] == ["b"]


def test_nothing_saved_restores_nothing(tmp_path: Path) -> None:
    """A fresh database has no last-known-good revision."""
    _, last_good = store(tmp_path)
    assert last_good.load() is None
    assert last_good.restore(tmp_path) is None


def test_a_stored_revision_that_no_longer_validates_is_not_enforced(tmp_path: Path) -> None:
    """Stored files are validated again on restore (say, saved by an older homeostat)."""
    _, last_good = store(tmp_path)
    broken = service_manifest("api", 1).replace("desiredCount: 1", "desiredCount: many")
    last_good.save(Revision("sha256:old"), tmp_path, {Path("api.yaml"): broken.encode()}, NOW)
    assert last_good.restore(tmp_path) is None


def test_a_tampered_row_is_not_enforced(tmp_path: Path) -> None:
    """A row whose files are not base64, or escape the directory, is ignored, not trusted."""
    history, last_good = store(tmp_path)
    for files in ({"api.yaml": "not base64!"}, {"../etc/api.yaml": "YQ=="}, ["api.yaml"]):
        with history.engine.begin() as connection:
            connection.execute(sa.delete(last_known_good))
            connection.execute(
                sa.insert(last_known_good),
                [{"id": 1, "revision": "r", "directory": "/d", "saved_at": NOW, "files": files}],
            )
        assert last_good.load() is None


def test_migration_0002_upgrades_a_database_made_by_0001(tmp_path: Path) -> None:
    """A history database of the first release gains the table on startup, keeping its rows."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    assert "last_known_good" not in sa.inspect(engine).get_table_names()
    engine.dispose()
    history = HistoryStore(url)
    assert {"actions", "last_known_good"} <= set(sa.inspect(history.engine).get_table_names())
    history.close()


def test_a_save_that_fails_is_reported_not_raised(tmp_path: Path) -> None:
    """A database error while saving is logged and returns False; the pass goes on."""
    history, last_good = store(tmp_path)
    with history.engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE last_known_good"))
    assert last_good.save(Revision("r"), tmp_path, {}, NOW) is False


relative_paths = st.lists(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=12).filter(
        lambda part: part not in {".", ".."}
    ),
    min_size=1,
    max_size=3,
).map(lambda parts: Path(*parts))


@given(st.dictionaries(relative_paths, st.binary(max_size=200), max_size=6))
def test_file_encoding_round_trips_any_bytes(files: dict[Path, bytes]) -> None:
    """Any relative paths and bytes (not only UTF-8) survive the JSON column."""
    assert decode_files(encode_files(files)) == files


@pytest.mark.parametrize("name", ["/etc/passwd", "../outside.yaml", "a/../../b.yaml"])
def test_decoding_refuses_paths_outside_the_directory(name: str) -> None:
    """Stored paths must stay inside the desired-state directory."""
    with pytest.raises(ValueError, match="not relative"):
        decode_files({name: "YQ=="})
