"""The revision of a desired-state directory: its git commit, else a content hash."""

import hashlib
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
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


# Fields before the path in `git status --porcelain=v2` entries: ordinary, renamed, unmerged.
_V2_FIELDS_BEFORE_PATH = {"1": 8, "2": 9, "u": 10}


def _status_paths(entries: list[str]) -> Iterator[str]:
    """The paths of `git status --porcelain=v2 -z` entries (a rename's new path; its old path is
    the next entry, skipped), with no quoting to undo: -z prints paths verbatim."""
    skip_next = False
    for entry in entries:
        if skip_next:
            skip_next = False
            continue
        tag = entry[:1]
        if tag in _V2_FIELDS_BEFORE_PATH:
            yield entry.split(" ", _V2_FIELDS_BEFORE_PATH[tag])[-1]
            skip_next = tag == "2"
        elif tag in {"?", "!"}:
            yield entry[2:]


def git_revision(
    directory: Path, files: Mapping[Path, bytes], unreadable: Sequence[str] = ()
) -> Revision | None:
    """`<commit>` when the directory sits in a clean git work tree.

    A dirty tree gives `<commit>-dirty.<hash>`: the flag tells an operator the
    running state is not exactly a commit, and the hash keeps two different
    dirty states from sharing one revision. One git process answers both (the
    commit is status's `branch.oid` header): every load, `validate` included, pays it.
    """
    # Only what is read counts: a changed, untracked or git-ignored
    # *.yaml/*.yml/*.json makes the tree dirty; an editor's backup file or a README does not.
    status = git_output(
        directory,
        "status",
        "--porcelain=v2",
        "--branch",
        "-z",
        "--untracked-files=all",
        "--ignored=traditional",
        "--",
        ".",
    )
    if status is None:
        return None
    entries = status.split("\0")
    commit = next((e.removeprefix("# branch.oid ") for e in entries if e.startswith("# branch.oid ")), "")
    if not commit or commit == "(initial)":
        return None
    if any(is_read_name(path) for path in _status_paths(entries)):
        return Revision(f"{commit[:12]}-dirty.{content_hash(files, unreadable).removeprefix('sha256:')[:8]}")
    return Revision(commit[:12])


def revision_of(directory: Path, files: Mapping[Path, bytes], unreadable: Sequence[str] = ()) -> Revision:
    """The git commit when inside a checkout, else a content hash of the manifests (and read errors)."""
    return git_revision(directory, files, unreadable) or content_hash(files, unreadable)
