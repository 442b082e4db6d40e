"""Load a desired-state directory into one whole valid DesiredState, or every error.

Reads `*.yaml`/`*.yml` recursively (hidden folders skipped), several documents
per file, with PyYAML's safe loader only: tags such as `!!python/object` are
errors, never executed. Errors carry file, line and field path; the line comes
from the YAML node of the field (or its nearest declared parent).
"""

import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from homeostat.desired_state.identifiers import API_VERSION, Kind, Revision
from homeostat.desired_state.models import MANIFEST_TYPES, AnyManifest
from homeostat.desired_state.revision import revision_of
from homeostat.desired_state.state import (
    DesiredState,
    InvalidDesiredState,
    ManifestError,
    Resource,
    Source,
)
from homeostat.desired_state.validation import cross_check

SUFFIXES = (".yaml", ".yml")
PathKey = tuple[str | int, ...]
_STABLE_READ_ATTEMPTS = 5


def manifest_files(directory: Path) -> list[Path]:
    """Manifest files below `directory`, sorted, skipping hidden files and folders."""
    found = []
    for path in directory.rglob("*"):
        relative = path.relative_to(directory)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.suffix in SUFFIXES and path.is_file():
            found.append(path)
    return sorted(found)


def _read_stable(directory: Path) -> dict[Path, bytes]:
    """Read every manifest file; re-read while any changes under us (a half-written file)."""
    previous: dict[Path, bytes] | None = None
    for _ in range(_STABLE_READ_ATTEMPTS):
        current = {p.relative_to(directory): p.read_bytes() for p in manifest_files(directory)}
        if current == previous:
            return current
        previous = current
        time.sleep(0.05)
    return previous or {}


_ALIAS_ERROR = "YAML aliases of mappings and lists are not supported"


def _line_map(
    node: yaml.Node,
    path: PathKey,
    out: dict[PathKey, int],
    errors: list[str],
    visited: set[int] | None = None,
) -> None:
    """Record the line of every field; flag duplicate keys and aliased collections.

    Aliases of mappings or sequences are refused: a self-referencing alias would
    recurse forever and nested aliases ("billion laughs") expand exponentially.
    """
    visited = set() if visited is None else visited
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
        if id(node) in visited:
            if not any(_ALIAS_ERROR in e for e in errors):  # one per document is enough
                errors.append(f"{node.start_mark.line + 1}\0{_dotted(path)}\0{_ALIAS_ERROR}")
            return
        visited.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                errors.append(f"{key_node.start_mark.line + 1}\0{_dotted((*path, key))}\0duplicate key")
            seen.add(key)
            out[(*path, key)] = key_node.start_mark.line + 1
            _line_map(value_node, (*path, key), out, errors, visited)
            out[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _line_map(item, (*path, index), out, errors, visited)


def _dotted(path: Iterable[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _line_for(lines: dict[PathKey, int], loc: PathKey) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _message(error_type: str, message: str, value: object = None) -> str:
    if error_type == "extra_forbidden":
        return "unknown field"
    if error_type == "missing":
        return "required field is missing"
    if error_type == "string_type" and isinstance(value, bool):
        # YAML 1.1 reads unquoted yes/no/on/off/true/false as booleans.
        return f"expected a string, got the boolean {str(value).lower()}: quote the value"
    return message.removeprefix("Value error, ")


def _documents(file: str, text: bytes) -> Iterable[tuple[Any, dict[PathKey, int], list[ManifestError]]]:
    loader = yaml.SafeLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            lines: dict[PathKey, int] = {}
            raw_errors: list[str] = []
            _line_map(node, (), lines, raw_errors)
            errors = []
            for raw in raw_errors:
                key_line, field, message = raw.split("\0")
                errors.append(ManifestError(file, int(key_line), field, message))
            yield loader.construct_document(node), lines, errors
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or "invalid YAML"
        if "python/" in problem or "could not determine a constructor" in problem:
            problem = f"unsupported YAML tag ({problem}); only plain YAML is accepted"
        yield None, {}, [ManifestError(file, line, None, f"invalid YAML: {problem}")]
    except yaml.YAMLError as exc:
        yield None, {}, [ManifestError(file, None, None, f"invalid YAML: {exc}")]
    finally:
        loader.dispose()


def parse_document(
    file: str, data: Any, lines: dict[PathKey, int]
) -> tuple[AnyManifest | None, list[ManifestError]]:
    """Validate one YAML document as a manifest of its declared kind."""
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
    if not isinstance(kind, str) or kind not in set(Kind):
        kinds = ", ".join(k.value for k in Kind)
        return None, [
            ManifestError(
                file,
                _line_for(lines, ("kind",)),
                "kind",
                f"unknown kind {kind!r} (expected one of {kinds})",
            )
        ]
    if data.get("apiVersion") != API_VERSION:
        return None, [
            ManifestError(
                file,
                _line_for(lines, ("apiVersion",)),
                "apiVersion",
                f"must be {API_VERSION!r}, got {data.get('apiVersion')!r}",
            )
        ]
    try:
        manifest = MANIFEST_TYPES[Kind(kind)].model_validate(data)
    except ValidationError as exc:
        errors = []
        for err in exc.errors(include_url=False):
            loc = tuple(part for part in err["loc"] if isinstance(part, str | int))
            errors.append(
                ManifestError(
                    file,
                    _line_for(lines, loc),
                    _dotted(loc) or None,
                    _message(err["type"], err["msg"], err.get("input")),
                )
            )
        return None, errors
    return manifest, []  # type: ignore[return-value]


def read_directory(directory: Path) -> tuple[dict[Path, bytes], Revision]:
    """Every manifest file's bytes (paths relative to `directory`, read until stable) and the revision.

    Raises InvalidDesiredState when the directory is missing or a file cannot be read.
    """
    if not directory.exists():
        raise InvalidDesiredState([ManifestError(str(directory), None, None, "no such directory")])
    if not directory.is_dir():
        raise InvalidDesiredState([ManifestError(str(directory), None, None, "not a directory")])
    try:
        files = _read_stable(directory)
    except OSError as exc:
        failed = Path(exc.filename) if exc.filename else directory
        name = str(directory)
        if failed != directory:
            try:
                name = failed.relative_to(directory).as_posix()
            except ValueError:
                name = str(failed)
        raise InvalidDesiredState([ManifestError(name, None, None, f"cannot read: {exc.strerror}")]) from exc
    return files, revision_of(directory, files)


def load_files(files: Mapping[Path, bytes], directory: Path, revision: Revision) -> DesiredState:
    """Pure: parse and validate file contents (paths relative to `directory`) as one revision.

    Raises InvalidDesiredState with every error. Used for the directory as read
    and for a last-known-good revision restored from the history database.
    """
    resources: list[Resource] = []
    errors: list[ManifestError] = []
    for relative, content in sorted(files.items()):
        file = relative.as_posix()
        for data, lines, doc_errors in _documents(file, content):
            errors.extend(doc_errors)
            if doc_errors or data is None:
                continue
            try:
                manifest, manifest_errors = parse_document(file, data, lines)
            except Exception as exc:  # noqa: BLE001 - any input the checks above missed rejects the revision
                errors.append(
                    ManifestError(file, lines.get(()), None, f"cannot validate: {type(exc).__name__}: {exc}")
                )
                continue
            errors.extend(manifest_errors)
            if manifest is not None:
                resources.append(Resource(manifest, Source(file, lines.get((), 1))))
    errors.extend(cross_check(resources))
    if errors:
        raise InvalidDesiredState(errors, revision)
    return DesiredState(revision=revision, directory=directory, resources=tuple(resources))


def load_directory(directory: Path) -> DesiredState:
    """Load and validate the whole directory; raise InvalidDesiredState with every error."""
    files, revision = read_directory(directory)
    return load_files(files, directory, revision)
