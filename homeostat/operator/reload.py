"""The desired-state step of a pass: reload the directory, reject a bad revision, unmanage removals.

An invalid revision is rejected whole: it is logged, counted and recorded
once (one `reject_revision` row per rejected revision, however many passes
see it), and the revision in force stays in force. A valid revision is saved
as the last known good; resources whose manifests it no longer holds get an
`unmanage` row (compared with the revision in force before, which after a
restart or in `run --once` is the last known good from the database) and
nothing in AWS is changed.

With `--selector` the whole directory is loaded, validated and saved, then
filtered to the shard (`shards.select`); a revision whose bonds the selector
cuts is rejected for this shard like an invalid one. A resource that leaves the
shard by a label change while its manifest stays is not unmanaged: the shard
its labels now match manages it (its history goes on there); it is only logged
(`resource_left_shard`) and leaves this daemon's status and metrics.
"""

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from homeostat.desired_state.loading import DirectoryLoader
from homeostat.desired_state.revision import content_hash
from homeostat.desired_state.selector import EVERYTHING, Selector
from homeostat.desired_state.shards import select
from homeostat.desired_state.state import DesiredState, InvalidDesiredState
from homeostat.operator.execution import Executor
from homeostat.operator.last_good import LastKnownGood, SavedRevision
from homeostat.operator.records import RevisionRejected, Unmanaged
from homeostat.operator.reporter import Reporter, ResourceKey
from homeostat.operator.status import LoopStatus
from homeostat.reconcilers.registry import kind_table, shard_bonds


class Reloader:
    def __init__(
        self,
        directory: Path,
        executor: Executor,
        last_good: LastKnownGood | None,
        reporter: Reporter,
        status: LoopStatus,
        log: Any,
        selector: Selector = EVERYTHING,
        loader: DirectoryLoader | None = None,
    ) -> None:
        self.directory = directory
        self.selector = selector
        self.executor = executor
        self.last_good = last_good
        self.reporter = reporter
        self.status = status
        self.log = log
        self.desired: DesiredState | None = None
        self.errors: tuple[str, ...] = ()  # of the newest revision, when it was rejected
        self._rejected: str | None = None
        # Parses only when the bytes changed; `run --once` hands in the one that validated them.
        self._loader = loader if loader is not None else DirectoryLoader(directory, kinds=kind_table())
        self._saved: SavedRevision | None = None  # read by restore(), rebuilt only when needed
        self._selected: tuple[DesiredState, DesiredState] | None = None  # (loaded, its shard)

    def restore(self) -> None:
        """Start from the last valid revision in the database, enforced until the directory loads.

        It is read now and rebuilt (parsed, validated) only when it is needed: the directory does
        not load, or holds other bytes than were saved (removed manifests are unmanaged against
        it). A directory holding exactly the saved bytes is that revision: every start (and every
        `run --once`) would otherwise parse the whole desired state twice."""
        self._saved = self.last_good.load() if self.last_good is not None else None

    def _restored(self) -> DesiredState | None:
        """The saved revision rebuilt as this daemon's shard (once), or None."""
        saved, self._saved = self._saved, None
        if saved is None or self.last_good is None:
            return None
        restored = self.last_good.rebuild(saved, self.directory)
        try:
            desired = self._shard(restored) if restored is not None else None
        except InvalidDesiredState as exc:
            self.log.warning("last_known_good_invalid", errors=[str(e) for e in exc.errors])
            return None
        if desired is not None:
            self.reporter.revision_in_force(desired.revision)
            self.status.revision = desired.revision
        return desired

    @property
    def valid(self) -> bool:
        return not self.errors

    def reload(self, now: datetime) -> set[ResourceKey]:
        """Load the directory; returns the keys of the resources now managed."""
        try:
            files, loaded = self._loader.load()
            shard = self._shard(loaded)
        except InvalidDesiredState as exc:
            if self.desired is None:
                self.desired = self._restored()
            self._reject(exc)
        else:
            if self.desired is None and self._saved is not None:
                if self.last_good is not None and content_hash(self._saved.files) == content_hash(files):
                    self.last_good.known(self._saved)  # the same bytes: nothing was removed
                    self._saved = None
                else:
                    self.desired = self._restored()
            self._accept(shard, loaded, files, now)
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

    def _shard(self, loaded: DesiredState) -> DesiredState:
        """This daemon's shard of `loaded`; the loader hands back the same state while the bytes
        are unchanged, so an in-sync pass filters (and checks the bonds) only once per revision."""
        if self._selected is not None and self._selected[0] is loaded:
            return self._selected[1]
        shard = select(loaded, self.selector, shard_bonds())
        self._selected = (loaded, shard)
        return shard

    def _accept(
        self, loaded: DesiredState, whole: DesiredState, files: Mapping[Path, bytes], now: datetime
    ) -> None:
        """`loaded` is this daemon's shard of `whole`, the directory as read (and saved)."""
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
            self._record_removed(previous, loaded, whole)
        self.desired = loaded
        with self.status.lock:
            self.status.valid = True
            self.status.revision = loaded.revision
            self.status.rejected_revision = None
            self.status.rejected_errors = ()

    def _record_removed(self, previous: DesiredState, loaded: DesiredState, whole: DesiredState) -> None:
        """`unmanage` rows for the manifests removed from the directory; a log line for those
        still declared that left the shard (no row: the shard they moved to manages them)."""
        gone = {(r.kind, r.name) for r in previous.resources} - {(r.kind, r.name) for r in loaded.resources}
        declared = {(r.kind, r.name) for r in whole.resources}
        for kind, name in sorted(gone & declared):
            self.log.info("resource_left_shard", kind=str(kind), name=name, selector=self.selector.text)
        removed = sorted(gone - declared)
        self.executor.record([Unmanaged(str(kind), name) for kind, name in removed], revision=loaded.revision)
