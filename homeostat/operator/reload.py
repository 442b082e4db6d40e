"""The desired-state step of a pass: reload the directory, reject a bad revision, unmanage removals.

An invalid revision is rejected whole: it is logged, counted and recorded
once (one `reject_revision` row per rejected revision, however many passes
see it), and the revision in force stays in force. A valid revision is saved
as the last known good; resources whose manifests it no longer holds get an
`unmanage` row (compared with the revision in force before, which after a
restart or in `run --once` is the last known good from the database) and
nothing in AWS is changed.
"""

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from homeostat.desired_state.loading import DirectoryLoader
from homeostat.desired_state.state import DesiredState, InvalidDesiredState
from homeostat.operator.execution import Executor
from homeostat.operator.last_good import LastKnownGood
from homeostat.operator.records import RevisionRejected, Unmanaged
from homeostat.operator.reporter import Reporter, ResourceKey
from homeostat.operator.status import LoopStatus
from homeostat.reconcilers.registry import kind_table


class Reloader:
    def __init__(
        self,
        directory: Path,
        executor: Executor,
        last_good: LastKnownGood | None,
        reporter: Reporter,
        status: LoopStatus,
        log: Any,
    ) -> None:
        self.directory = directory
        self.executor = executor
        self.last_good = last_good
        self.reporter = reporter
        self.status = status
        self.log = log
        self.desired: DesiredState | None = None
        self.errors: tuple[str, ...] = ()  # of the newest revision, when it was rejected
        self._rejected: str | None = None
        self._loader = DirectoryLoader(directory, kinds=kind_table())  # parses only when the bytes changed

    def restore(self) -> None:
        """Start from the last valid revision in the database, enforced until the directory loads."""
        if self.last_good is None:
            return
        self.desired = self.last_good.restore(self.directory)
        if self.desired is not None:
            self.reporter.revision_in_force(self.desired.revision)
            self.status.revision = self.desired.revision

    @property
    def valid(self) -> bool:
        return not self.errors

    def reload(self, now: datetime) -> set[ResourceKey]:
        """Load the directory; returns the keys of the resources now managed."""
        try:
            files, loaded = self._loader.load()
        except InvalidDesiredState as exc:
            self._reject(exc)
        else:
            self._accept(loaded, files, now)
        return {(r.kind, r.name) for r in self.desired.resources} if self.desired else set()

    def _reject(self, exc: InvalidDesiredState) -> None:
        self.reporter.desired_state_loaded(None)
        rejected = exc.revision or "unreadable"
        self.errors = tuple(str(e) for e in exc.errors) or (str(exc),)
        with self.status.lock:
            self.status.valid = False
            self.status.rejected_revision = rejected
            self.status.rejected_errors = self.errors
        if rejected == self._rejected:
            return
        self._rejected = rejected
        in_force = self.desired.revision if self.desired else None
        self.log.error(
            "desired_state_rejected", rejected=rejected, in_force=in_force, errors=list(self.errors)
        )
        event = RevisionRejected(str(self.directory), rejected, in_force, self.errors)
        self.executor.record([event], revision=rejected)

    def _accept(self, loaded: DesiredState, files: Mapping[Path, bytes], now: datetime) -> None:
        self.reporter.desired_state_loaded(loaded.revision)
        self._rejected = None
        self.errors = ()
        previous = self.desired
        if previous is None or previous.revision != loaded.revision:
            self.log.info("desired_state_loaded", revision=loaded.revision, resources=len(loaded.resources))
            self.reporter.revision_in_force(loaded.revision)
        if self.last_good is not None:
            self.last_good.save(loaded.revision, self.directory, files, now)
        if previous is not None:
            self._record_removed(previous, loaded)
        self.desired = loaded
        with self.status.lock:
            self.status.valid = True
            self.status.revision = loaded.revision
            self.status.rejected_revision = None
            self.status.rejected_errors = ()

    def _record_removed(self, previous: DesiredState, loaded: DesiredState) -> None:
        keys = {(r.kind, r.name) for r in loaded.resources}
        removed = sorted({(r.kind, r.name) for r in previous.resources} - keys)
        self.executor.record([Unmanaged(str(kind), name) for kind, name in removed], revision=loaded.revision)
