"""Read a desired-state directory as bytes, reporting every thing that cannot be read.

Nothing is skipped silently: a manifest skipped because it could not be read
would quietly unmanage what it declared. So the walk reports, one located
`cannot read` error per cause, an unreadable subdirectory or file, a dangling
symlink, a symlink loop (a link to itself, or to a directory that contains
it), a special file (a FIFO would block the reader forever) and a file over
10 MiB (checked before reading, and read no further than 10 MiB + 1 bytes in
case it grows meanwhile). Bytes that are not UTF-8 text are reported with the
line and byte offset, before any YAML parser sees them.

Files ending in `.json` are read too, as attachments a manifest may name.
Hidden entries (`.git`, editor lock files such as `.#svc.yaml`) are never
read. Manifest suffixes are case-insensitive: `x.YAML` is a manifest.
Symlinked files and directories are followed, so what they hold is managed.
"""

import errno
import os
import re
import stat
from pathlib import Path

from homeostat.desired_state.state import ManifestError

SUFFIXES = (".yaml", ".yml")
# Files a manifest may name (an ECSTaskDefinition's `definitionFile`): read with the manifests,
# so that they are part of the revision (its content hash, the last-known-good copy, the
# watcher's fingerprint) and are judged by the same rules, but never parsed as manifests.
ATTACHMENT_SUFFIXES = (".json",)
MIB = 1024 * 1024
MAX_FILE_BYTES = 10 * MIB

# Characters YAML 1.1 forbids in a stream (PyYAML's Reader.NON_PRINTABLE); libyaml refuses them too.
_NON_PRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_LOOP = "symlink loop (a link to a directory that contains it)"


class Unreadable(Exception):
    """A file that must not be parsed; the message says why."""


def is_manifest_name(name: str) -> bool:
    return name.lower().endswith(SUFFIXES)


def is_read_name(name: str) -> bool:
    """A manifest, or a file a manifest may name: what the walk reads."""
    return name.lower().endswith((*SUFFIXES, *ATTACHMENT_SUFFIXES))


def display_name(directory: Path, path: Path) -> str:
    """`path` relative to `directory` (posix), or the directory itself as given."""
    return path.relative_to(directory).as_posix() if path != directory else str(directory)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _link_reason(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    if exc.errno == errno.ENOENT:
        try:
            return f"dangling symlink to {os.readlink(path)}"
        except OSError:
            return "dangling symlink"
    return _reason(exc)


def _contains(outer: str, inner: str) -> bool:
    return inner == outer or inner.startswith(outer.rstrip(os.sep) + os.sep)


def walk(directory: Path) -> tuple[list[Path], list[ManifestError]]:
    """Manifest and attachment files below `directory` (sorted), one error per thing not readable."""
    files: list[Path] = []
    errors: list[ManifestError] = []

    def fail(path: Path, reason: str) -> None:
        errors.append(ManifestError(display_name(directory, path), None, None, f"cannot read: {reason}"))

    def visit(folder: Path, ancestors: tuple[str, ...]) -> None:
        try:
            with os.scandir(folder) as listing:
                names = sorted(entry.name for entry in listing)
        except OSError as exc:
            fail(folder, _reason(exc))
            return
        for name in names:
            if name.startswith("."):
                continue
            path = folder / name
            try:
                info = path.stat()  # follows symlinks: a link is judged by what it points to
            except OSError as exc:
                fail(path, _link_reason(path, exc) if path.is_symlink() else _reason(exc))
                continue
            if stat.S_ISDIR(info.st_mode):
                real = os.path.realpath(path)
                if any(_contains(real, ancestor) for ancestor in ancestors):
                    fail(path, _LOOP)
                else:
                    visit(path, (*ancestors, real))
            elif is_read_name(name):
                if stat.S_ISREG(info.st_mode):
                    files.append(path)
                else:
                    fail(path, "not a regular file")

    visit(directory, (os.path.realpath(directory),))
    return sorted(files), errors


def _size(count: int) -> str:
    return f"{count // MIB} MiB" if count % MIB == 0 else f"{count} bytes"


def read_file(path: Path) -> bytes:
    """The bytes of one manifest file; raises Unreadable (unreadable, not regular, over the limit)."""
    limit = MAX_FILE_BYTES
    try:
        # O_NONBLOCK: a FIFO swapped in after the walk must not block the daemon in open().
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise Unreadable(_reason(exc)) from exc
    with open(descriptor, "rb") as handle:
        try:
            info = os.fstat(descriptor)
            if not stat.S_ISREG(info.st_mode):
                raise Unreadable("not a regular file")
            if info.st_size > limit:
                raise Unreadable(f"{info.st_size} bytes, over the {_size(limit)} limit per file")
            content = handle.read(limit + 1)
        except OSError as exc:
            raise Unreadable(_reason(exc)) from exc
    if len(content) > limit:
        raise Unreadable(f"more than {limit} bytes, over the {_size(limit)} limit per file")
    return content


def read_tree(directory: Path) -> tuple[dict[Path, bytes], list[ManifestError]]:
    """Every manifest's bytes (paths relative to `directory`) and every error met reading them."""
    paths, errors = walk(directory)
    contents: dict[Path, bytes] = {}
    for path in paths:
        try:
            contents[path.relative_to(directory)] = read_file(path)
        except Unreadable as exc:
            errors.append(ManifestError(display_name(directory, path), None, None, f"cannot read: {exc}"))
    return contents, errors


def _located(file: str, content: bytes, offset: int, problem: str) -> ManifestError:
    line = content.count(b"\n", 0, offset) + 1
    return ManifestError(file, line, None, f"cannot read: {problem}")


def undecodable(file: str, content: bytes) -> ManifestError | None:
    """Why `content` is not YAML text (a NUL byte, not UTF-8, a forbidden control character), located."""
    nul = content.find(b"\0")
    if nul >= 0:
        return _located(file, content, nul, f"NUL byte at byte offset {nul} (a binary file?)")
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        problem = f"not valid UTF-8 (byte 0x{content[exc.start]:02x} at byte offset {exc.start})"
        return _located(file, content, exc.start, problem)
    match = _NON_PRINTABLE.search(text)
    if match is None:
        return None
    offset = len(text[: match.start()].encode())
    character = f"U+{ord(match.group()):04X}"
    return _located(file, content, offset, f"control character {character} at byte offset {offset}")
