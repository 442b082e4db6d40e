"""Watch the desired-state directory and request a pass when it changes.

Two sources, both only *request* a pass: watchfiles (inotify and friends,
sub-second) and a 1 s fingerprint poll of paths, sizes and mtimes, which
also covers filesystems without change events and a git-sync style
symlink swap (the watched tree itself does not change, the link does).
"""

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from homeostat.desired_state.loading import manifest_files
from homeostat.desired_state.revision import git_output

POLL_SECONDS = 1.0


def git_dir(directory: Path) -> Path | None:
    """The git directory of a checkout containing `directory`, if any."""
    found = git_output(directory, "rev-parse", "--absolute-git-dir")
    return Path(found) if found else None


def _git_state(gitdir: Path | None) -> tuple[Any, ...]:
    """mtimes of the files a commit or checkout touches: a commit of edits already on disk
    changes the revision without changing any manifest."""
    if gitdir is None:
        return ()
    state: list[tuple[str, int | None]] = []
    for name in ("HEAD", "index", "packed-refs", "ORIG_HEAD"):
        try:
            state.append((name, (gitdir / name).stat().st_mtime_ns))
        except OSError:
            state.append((name, None))
    return tuple(state)


def fingerprint(directory: Path, gitdir: Path | None = None) -> tuple[Any, ...]:
    try:
        real = os.path.realpath(directory)
        entries = []
        for path in manifest_files(directory):
            stat = path.stat()
            entries.append((str(path.relative_to(directory)), stat.st_mtime_ns, stat.st_size))
        return (real, tuple(entries), _git_state(gitdir))
    except OSError as exc:
        return ("error", str(exc))


class DirectoryWatcher:
    def __init__(self, directory: Path, on_change: Callable[[], None], log: Any) -> None:
        self.directory = directory
        self.on_change = on_change
        self.log = log
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for target, name in ((self._poll, "watch-poll"), (self._events, "watch-events")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)

    def _poll(self) -> None:
        real = os.path.realpath(self.directory)
        gitdir = git_dir(self.directory)
        last = fingerprint(self.directory, gitdir)
        while not self._stop.wait(POLL_SECONDS):
            if os.path.realpath(self.directory) != real:  # a symlink swap: maybe another checkout
                real = os.path.realpath(self.directory)
                gitdir = git_dir(self.directory)
            current = fingerprint(self.directory, gitdir)
            if current != last:
                last = current
                self.on_change()

    def _events(self) -> None:
        try:
            from watchfiles import watch

            target = self.directory.parent if self.directory.is_symlink() else self.directory
            for _changes in watch(
                target, stop_event=self._stop, debounce=200, step=50, raise_interrupt=False
            ):
                self.on_change()
        except Exception as exc:  # noqa: BLE001 - the poll keeps working without events
            self.log.warning("watch_events_unavailable", error=str(exc), fallback="polling every 1s")
