"""Load a desired-state directory into one whole valid DesiredState, or every error.

Reading (reading.py) walks the directory and reports everything it cannot
read; parsing (parsing.py) turns bytes into documents with the line of every
field; here each document is validated as a manifest of its kind and the
cross-document rules run over the whole revision. Errors carry file, line and
field path; the line comes from the YAML node of the field (or its nearest
declared parent). A revision is valid whole or rejected with every error.
"""

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from homeostat.desired_state.identifiers import API_VERSION, Kind, Revision
from homeostat.desired_state.models import ManifestBase
from homeostat.desired_state.parsing import PathKey, documents, dotted, line_for
from homeostat.desired_state.reading import Unreadable, is_manifest_name, read_file, read_tree, walk
from homeostat.desired_state.revision import content_hash, revision_of
from homeostat.desired_state.state import (
    DesiredState,
    InvalidDesiredState,
    ManifestError,
    Resource,
    Source,
)
from homeostat.desired_state.validation import KindTable, cross_check

_STABLE_READ_ATTEMPTS = 5
# A file modified this recently may still be being written (git-sync, an editor, a copy): its
# directory is read again after a pause, until two reads agree. Anything older was complete
# before the read began, so one read is enough, and a one-shot command (`validate` in a
# pre-commit hook) pays no pause. The margin is wide for file systems with coarse timestamps.
_SETTLE_SECONDS = 2.0


def manifest_files(directory: Path) -> list[Path]:
    """Manifest files below `directory`, sorted (what cannot be read is left to `read_directory`)."""
    return walk(directory)[0]


def _recently_modified(directory: Path, files: Mapping[Path, bytes], now: float) -> bool:
    """Whether any file read was modified within _SETTLE_SECONDS of `now` (or can no longer be
    stat-ed): checked after the read, so a write during the read counts too."""
    for relative in files:
        try:
            if os.stat(directory / relative).st_mtime > now - _SETTLE_SECONDS:
                return True
        except OSError:
            return True
    return False


def _read_stable(directory: Path) -> tuple[dict[Path, bytes], list[ManifestError]]:
    """Read every manifest file; while any may be half-written, re-read until two reads agree."""
    previous = read_tree(directory)
    if not _recently_modified(directory, previous[0], time.time()):
        return previous
    for _ in range(_STABLE_READ_ATTEMPTS - 1):
        time.sleep(0.05)
        current = read_tree(directory)
        if current == previous:
            break
        previous = current
    return previous


def _message(error_type: str, message: str, value: object = None) -> str:
    if error_type == "extra_forbidden":
        return "unknown field"
    if error_type == "missing":
        return "required field is missing"
    if error_type == "string_type" and isinstance(value, bool):
        # YAML 1.1 reads unquoted yes/no/on/off/true/false as booleans.
        return f"expected a string, got the boolean {str(value).lower()}: quote the value"
    return message.removeprefix("Value error, ")


def parse_document(
    file: str, data: Any, lines: dict[PathKey, int], kinds: KindTable
) -> tuple[ManifestBase | None, list[ManifestError]]:
    """Validate one YAML document as a manifest of its declared kind (one of `kinds`)."""
    line = lines.get((), 1)
    if not isinstance(data, dict):
        return None, [
            ManifestError(
                file,
                line,
                None,
                "a manifest must be a mapping with apiVersion, kind, metadata, spec",
            )
        ]
    kind = data.get("kind")
    if kind is None:
        return None, [ManifestError(file, line, "kind", "required field is missing")]
    if not isinstance(kind, str) or kind not in kinds.models:
        known = ", ".join(kinds.models)
        return None, [
            ManifestError(
                file,
                line_for(lines, ("kind",)),
                "kind",
                f"unknown kind {kind!r} (expected one of {known})",
            )
        ]
    if data.get("apiVersion") != API_VERSION:
        return None, [
            ManifestError(
                file,
                line_for(lines, ("apiVersion",)),
                "apiVersion",
                f"must be {API_VERSION!r}, got {data.get('apiVersion')!r}",
            )
        ]
    try:
        manifest = kinds.models[Kind(kind)].model_validate(data)
    except ValidationError as exc:
        errors = []
        for err in exc.errors(include_url=False):
            loc = tuple(part for part in err["loc"] if isinstance(part, str | int))
            errors.append(
                ManifestError(
                    file,
                    line_for(lines, loc),
                    dotted(loc) or None,
                    _message(err["type"], err["msg"], err.get("input")),
                )
            )
        return None, errors
    return manifest, []


def _read(directory: Path) -> tuple[dict[Path, bytes], list[ManifestError], Revision]:
    """What could be read below `directory`, what could not (one error per cause), and the revision.

    Raises InvalidDesiredState only when the directory itself is missing.
    """
    if not directory.exists():
        raise InvalidDesiredState([ManifestError(str(directory), None, None, "no such directory")])
    if not directory.is_dir():
        raise InvalidDesiredState([ManifestError(str(directory), None, None, "not a directory")])
    files, errors = _read_stable(directory)
    return files, errors, revision_of(directory, files, unreadable=[str(e) for e in errors])


def read_directory(directory: Path) -> tuple[dict[Path, bytes], Revision]:
    """Every manifest file's bytes (paths relative to `directory`, read until stable) and the revision.

    Raises InvalidDesiredState when the directory is missing or anything in it
    cannot be read, with one error per cause and the revision of what was read.
    """
    files, errors, revision = _read(directory)
    if errors:
        raise InvalidDesiredState(errors, revision)
    return files, revision


def _read_paths(paths: Sequence[Path]) -> tuple[dict[Path, bytes], list[ManifestError], Revision]:
    """Files and directories as given (a pre-commit hook passes the changed files), keyed as given.

    A directory's files are keyed `given/relative`, so that errors name the
    paths as the user typed them; a path named twice (or a file inside a
    directory also given) is read once. One directory alone keeps its git revision.
    """
    if len(paths) == 1 and paths[0].is_dir():
        files, errors, revision = _read(paths[0])
        keyed = {paths[0] / relative: content for relative, content in files.items()}
        return keyed, [_under(paths[0], e) for e in errors], revision
    contents: dict[Path, bytes] = {}
    errors = []
    seen: set[str] = set()
    for given in paths:
        if given.is_dir():
            files, unreadable, _ = _read(given)
            errors.extend(_under(given, e) for e in unreadable)
            found = {given / relative: content for relative, content in files.items()}
        elif given.exists():
            try:
                found = {given: read_file(given)}
            except Unreadable as exc:
                errors.append(ManifestError(str(given), None, None, f"cannot read: {exc}"))
                continue
        else:
            missing = "no such file" if is_manifest_name(given.name) else "no such directory"
            errors.append(ManifestError(str(given), None, None, missing))
            continue
        for path, content in found.items():
            real = os.path.realpath(path)
            if real not in seen:
                seen.add(real)
                contents[path] = content
    return contents, errors, content_hash(contents, unreadable=[str(e) for e in errors])


def _under(directory: Path, error: ManifestError) -> ManifestError:
    """An error of a directory's walk, naming the file as `directory/file`."""
    if error.file == str(directory):
        return error
    return ManifestError((directory / error.file).as_posix(), error.line, error.field, error.message)


def load_files(
    files: Mapping[Path, bytes], directory: Path, revision: Revision, *, kinds: KindTable
) -> DesiredState:
    """Pure: parse and validate file contents (paths relative to `directory`) as one revision.

    Raises InvalidDesiredState with every error. Used for the directory as read
    and for a last-known-good revision restored from the history database. `kinds` comes
    from above (the registry of kinds): this layer knows no kind by itself.
    """
    resources: list[Resource[Any]] = []
    errors: list[ManifestError] = []
    attachments = {p.as_posix(): content for p, content in files.items() if not is_manifest_name(p.name)}
    for relative, content in sorted(files.items()):
        if not is_manifest_name(relative.name):
            continue  # an attachment: read by the manifest that names it (`KindTable.resolvers`)
        file = relative.as_posix()
        for data, lines, doc_errors in documents(file, content):
            errors.extend(doc_errors)
            if doc_errors or data is None:
                continue
            try:
                manifest, manifest_errors = parse_document(file, data, lines, kinds)
                resolve = kinds.resolvers.get(Kind(manifest.kind)) if manifest is not None else None
                if manifest is not None and resolve is not None:
                    manifest, manifest_errors = resolve(manifest, file, partial(line_for, lines), attachments)
            except Exception as exc:  # noqa: BLE001 - any input the checks above missed rejects the revision
                errors.append(
                    ManifestError(file, lines.get(()), None, f"cannot validate: {type(exc).__name__}: {exc}")
                )
                continue
            errors.extend(manifest_errors)
            if manifest is not None:
                resources.append(Resource(manifest, Source(file, lines.get((), 1))))
    errors.extend(cross_check(resources, kinds.checks))
    if errors:
        raise InvalidDesiredState(errors, revision)
    return DesiredState(revision=revision, directory=directory, resources=tuple(resources))


def _parse_or_reject(
    files: Mapping[Path, bytes], directory: Path, revision: Revision, kinds: KindTable
) -> DesiredState | InvalidDesiredState:
    try:
        return load_files(files, directory, revision, kinds=kinds)
    except InvalidDesiredState as exc:
        return exc


def _whole(
    unreadable: Sequence[ManifestError], parsed: DesiredState | InvalidDesiredState, revision: Revision
) -> DesiredState:
    """The state, or every error at once: what could not be read, then what was read but is invalid."""
    errors = [*unreadable, *(parsed.errors if isinstance(parsed, InvalidDesiredState) else ())]
    if errors or isinstance(parsed, InvalidDesiredState):
        raise InvalidDesiredState(errors, revision)  # a fresh exception: no traceback growing per pass
    return parsed if parsed.revision == revision else replace(parsed, revision=revision)


def load_directory(directory: Path, *, kinds: KindTable) -> DesiredState:
    """Load and validate the whole directory; raise InvalidDesiredState with every error."""
    files, unreadable, revision = _read(directory)
    return _whole(unreadable, _parse_or_reject(files, directory, revision, kinds), revision)


def load_paths(paths: Sequence[Path], *, kinds: KindTable) -> DesiredState:
    """Load and validate the files and directories given as one desired state (`validate PATH...`).

    Files are named as given (see _read_paths), so the state's directory is the current one.
    """
    files, unreadable, revision = _read_paths(paths)
    return _whole(unreadable, _parse_or_reject(files, Path(), revision, kinds), revision)


class DirectoryLoader:
    """Loads one directory on every call, but parses its bytes only when they changed.

    The daemon reloads on every pass; reading is cheap, parsing 10 MiB is not.
    The last parse (a state, or the rejection) is kept with the digest of the
    bytes it came from; a new revision over the same bytes (a commit that
    changed no manifest) reuses it under the new revision. Read errors are
    never cached: they are found by reading, which happens every time.
    """

    def __init__(self, directory: Path, kinds: KindTable) -> None:
        self.directory = directory
        self.kinds = kinds
        self._digest: Revision | None = None
        self._parsed: DesiredState | InvalidDesiredState | None = None

    def load(self) -> tuple[dict[Path, bytes], DesiredState]:
        """The bytes read (for the last-known-good copy) and their state; raises InvalidDesiredState."""
        files, unreadable, revision = _read(self.directory)
        digest = content_hash(files)
        if self._parsed is None or digest != self._digest:
            self._parsed, self._digest = _parse_or_reject(files, self.directory, revision, self.kinds), digest
        state = _whole(unreadable, self._parsed, revision)
        self._parsed = state
        return files, state
