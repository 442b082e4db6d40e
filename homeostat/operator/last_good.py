"""The last-known-good desired state, persisted in the history database.

A revision of the directory that fails validation is rejected whole and the
previous valid one stays in force. Keeping that previous revision only in
memory would lose it on a restart, so each newly loaded valid revision is
saved here (its id and the bytes of every manifest file) and a daemon that
starts while the directory is invalid rebuilds it with the loader's own
parsing (`load_files`) and keeps enforcing it.

One slot per shard (per `--selector`; a daemon without one has slot 1): the
lease makes one writer per shard, and a slot of its own means two shards that
see different revisions during an update (one has pulled the new commit, the
other not yet) never overwrite each other's, and each restarts on the revision
it was enforcing. The whole directory is saved (the shard is filtered after
loading, like a directory read from disk). Keeping the slot independent of the
directory path means a moved mount or a missing checkout still finds what was
last good.
Storage failures are logged and never stop a pass: the in-memory state is
still in force, only its survival of a restart is at risk.
"""

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from homeostat.desired_state.identifiers import Revision
from homeostat.desired_state.instants import as_utc
from homeostat.desired_state.loading import load_files
from homeostat.desired_state.state import DesiredState, InvalidDesiredState
from homeostat.operator.clock import rfc3339
from homeostat.operator.history import first_line
from homeostat.operator.history_schema import last_known_good
from homeostat.reconcilers.registry import kind_table

SLOT_ID = 1


def slot_id(shard: str) -> int:
    """The slot of a shard: 1 without a selector, else a stable 31-bit digest of the canonical
    selector text (from 2). The row also holds the text, so a digest collision reads as no
    slot rather than as another shard's revision."""
    if not shard:
        return SLOT_ID
    return 2 + int.from_bytes(hashlib.sha256(shard.encode("utf-8")).digest()[:4], "big") % (2**31 - 2)


@dataclass(frozen=True, slots=True)
class SavedRevision:
    """One persisted valid revision: its id, where it was read, when, and its file bytes."""

    revision: Revision
    directory: str
    saved_at: datetime
    files: Mapping[Path, bytes]


def encode_files(files: Mapping[Path, bytes]) -> dict[str, str]:
    """Pure: relative paths (POSIX spelling) to base64 text, for a JSON column."""
    return {path.as_posix(): base64.b64encode(content).decode("ascii") for path, content in files.items()}


def decode_files(stored: Mapping[str, str]) -> dict[Path, bytes]:
    """Pure: the inverse of `encode_files`; raises ValueError on anything else."""
    files: dict[Path, bytes] = {}
    for name, text in stored.items():
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts:
            raise ValueError(f"stored manifest path {name!r} is not relative to the directory")
        try:
            files[Path(*relative.parts)] = base64.b64decode(text.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError) as exc:
            raise ValueError(f"stored manifest {name!r} is not base64: {exc}") from exc
    return files


class LastKnownGood:
    """Save and restore the last valid revision; never raises on storage errors."""

    def __init__(self, engine: Engine, log: Any, shard: str = "") -> None:
        self.engine = engine
        self.log = log
        self.shard = shard
        self.slot = slot_id(shard)
        self._saved: tuple[str, str] | None = None

    def save(self, revision: Revision, directory: Path, files: Mapping[Path, bytes], now: datetime) -> bool:
        """Persist `files` as the last valid revision. A no-op when that revision is already saved."""
        key = (str(revision), str(directory))
        if key == self._saved:
            return True
        row = {
            "id": self.slot,
            "shard": self.shard,
            "revision": str(revision),
            "directory": str(directory),
            "saved_at": as_utc(now),
            "files": encode_files(files),
        }
        try:
            with self.engine.begin() as connection:
                connection.execute(sa.delete(last_known_good).where(last_known_good.c.id == self.slot))
                connection.execute(sa.insert(last_known_good), [row])
        except SQLAlchemyError as exc:
            self.log.warning("last_known_good_save_failed", revision=revision, error=first_line(exc))
            return False
        self._saved = key
        self.log.info("last_known_good_saved", revision=revision, files=len(files))
        return True

    def known(self, saved: SavedRevision) -> None:
        """The slot holds `saved` already: saving that revision again is a no-op."""
        self._saved = (str(saved.revision), saved.directory)

    def load(self) -> SavedRevision | None:
        """The persisted revision, or None when there is none or it cannot be read."""
        statement = (
            sa.select(last_known_good)
            .where(last_known_good.c.id == self.slot)
            .where(last_known_good.c.shard == self.shard)
        )
        try:
            with self.engine.connect() as connection:
                row = connection.execute(statement).mappings().first()
        except SQLAlchemyError as exc:
            self.log.warning("last_known_good_unreadable", error=first_line(exc))
            return None
        if row is None:
            return None
        try:
            if not isinstance(row["files"], dict):
                raise ValueError("files is not a mapping")
            files = decode_files(row["files"])
        except (ValueError, TypeError, AttributeError) as exc:
            self.log.warning("last_known_good_unreadable", revision=row["revision"], error=str(exc))
            return None
        return SavedRevision(Revision(row["revision"]), row["directory"], as_utc(row["saved_at"]), files)

    def restore(self, directory: Path) -> DesiredState | None:
        """Rebuild the persisted revision as a DesiredState of `directory`, or None.

        The stored files are validated again with today's loader: a revision
        that no longer validates (say, saved by an older homeostat) is not
        enforced, and that is logged.
        """
        saved = self.load()
        return None if saved is None else self.rebuild(saved, directory)

    def rebuild(self, saved: SavedRevision, directory: Path) -> DesiredState | None:
        """`saved` (from `load`) as a DesiredState of `directory`, or None when it no longer
        validates (logged)."""
        try:
            desired = load_files(saved.files, directory, saved.revision, kinds=kind_table())
        except InvalidDesiredState as exc:
            self.log.warning(
                "last_known_good_invalid",
                revision=saved.revision,
                errors=[str(e) for e in exc.errors],
            )
            return None
        self._saved = (str(saved.revision), saved.directory)
        self.log.info(
            "last_known_good_restored",
            revision=saved.revision,
            saved_at=rfc3339(saved.saved_at),
            saved_from=saved.directory,
            resources=len(desired.resources),
        )
        return desired
