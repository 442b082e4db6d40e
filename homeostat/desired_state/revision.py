"""The revision of a desired-state directory: its git commit, else a content hash."""

import hashlib
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from homeostat.desired_state.identifiers import Revision
from homeostat.desired_state.reading import is_read_name

_GIT_TIMEOUT_SECONDS = 10


def content_hash(files: Mapping[Path, bytes], unreadable: Sequence[str] = ()) -> Revision:
    """A stable hash over relative paths and bytes; independent of read order.

    `unreadable` (the read errors) is hashed too, so that a directory with a
    file that cannot be read never shares its revision with the readable rest.
    """
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.as_posix()):
        digest.update(path.as_posix().encode())
        digest.update(b"\0")
        digest.update(hashlib.sha256(files[path]).digest())
    for error in sorted(unreadable):
        digest.update(b"\0unreadable\0" + error.encode())
    return Revision(f"sha256:{digest.hexdigest()[:16]}")


def git_output(directory: Path, *args: str) -> str | None:
    """`git -C directory args...` stripped stdout, or None (no git, not a checkout, failure)."""
    git = shutil.which("git")
    if git is None:
        return None
    try:
        result = subprocess.run(
            [git, "-C", str(directory), *args],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _is_manifest(path: str) -> bool:
    """A `git status --porcelain` path (possibly quoted, or `old -> new`) that names a file we read."""
    return is_read_name(path.strip().strip('"').split(" -> ")[-1])


def git_revision(
    directory: Path, files: Mapping[Path, bytes], unreadable: Sequence[str] = ()
) -> Revision | None:
    """`<commit>` when the directory sits in a clean git work tree.

    A dirty tree gives `<commit>-dirty.<hash>`: the flag tells an operator the
    running state is not exactly a commit, and the hash keeps two different
    dirty states from sharing one revision.
    """
    commit = git_output(directory, "rev-parse", "HEAD")
    if not commit:
        return None
    # Only what is read counts: a changed, untracked or git-ignored
    # *.yaml/*.yml/*.json makes the tree dirty; an editor's backup file or a README does not.
    status = git_output(
        directory, "status", "--porcelain", "--untracked-files=all", "--ignored=traditional", "--", "."
    )
    if status and any(_is_manifest(line[3:]) for line in status.splitlines()):
        return Revision(f"{commit[:12]}-dirty.{content_hash(files, unreadable).removeprefix('sha256:')[:8]}")
    return Revision(commit[:12])


def revision_of(directory: Path, files: Mapping[Path, bytes], unreadable: Sequence[str] = ()) -> Revision:
    """The git commit when inside a checkout, else a content hash of the manifests (and read errors)."""
    return git_revision(directory, files, unreadable) or content_hash(files, unreadable)
