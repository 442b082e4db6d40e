"""YAML bytes to documents, each with the line of every field, safely and fast.

PyYAML's C loader (libyaml) is used where it is installed, the pure-Python
safe loader otherwise; both keep the marks that give every field its line.
Only the safe constructor runs: tags such as `!!python/object` are errors,
never executed. Three inputs are refused before they can hurt:

- aliases of mappings and lists: a self-referencing alias would recurse
  forever and nested aliases ("billion laughs") expand exponentially;
- nesting deeper than MAX_DEPTH: libyaml's composer recurses on the C stack
  and a file of 100,000 `[` kills the process with a segfault, so the events
  of each document are scanned (iteratively) before it is composed;
- bytes that are not UTF-8 text (see reading.undecodable), before any parser.
"""

from collections.abc import Iterable, Iterator
from typing import Any

import yaml

from homeostat.desired_state.reading import undecodable
from homeostat.desired_state.state import ManifestError

PathKey = tuple[str | int, ...]
Lines = dict[PathKey, int]
MAX_DEPTH = 64  # manifests nest about 5 deep; the pure-Python composer would hit the recursion limit near 300
ALIAS_ERROR = "YAML aliases of mappings and lists are not supported"
_Loader: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def dotted(path: Iterable[str | int]) -> str:
    """`spec.alarms[0].name` for the path ("spec", "alarms", 0, "name")."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def line_for(lines: Lines, loc: PathKey) -> int | None:
    """The line of `loc`, or of its nearest ancestor that has one."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _line_map(
    file: str, node: yaml.Node, path: PathKey, out: Lines, errors: list[ManifestError], visited: set[int]
) -> None:
    """Record the line of every field; flag duplicate keys and aliased collections."""
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
        if id(node) in visited:
            if not any(ALIAS_ERROR in e.message for e in errors):  # one per document is enough
                # An alias carries the marks of its anchor: name the line where it is used.
                errors.append(ManifestError(file, line_for(out, path), dotted(path), ALIAS_ERROR))
            return
        visited.add(id(node))
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                errors.append(
                    ManifestError(file, key_node.start_mark.line + 1, dotted((*path, key)), "duplicate key")
                )
            seen.add(key)
            out[(*path, key)] = key_node.start_mark.line + 1
            _line_map(file, value_node, (*path, key), out, errors, visited)
            out[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _line_map(file, item, (*path, index), out, errors, visited)


def _too_deep(events: yaml.SafeLoader | yaml.CSafeLoader) -> int | None:
    """Advance `events` past one document; the line where it nests deeper than MAX_DEPTH, if it does."""
    depth = 0
    while events.check_event():
        event = events.get_event()
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                return mark.line + 1 if mark is not None else 1
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        elif isinstance(event, yaml.DocumentEndEvent):
            return None
    return None


def _yaml_error(file: str, exc: yaml.YAMLError) -> ManifestError:
    if not isinstance(exc, yaml.MarkedYAMLError):
        return ManifestError(file, None, None, f"invalid YAML: {exc}")
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "invalid YAML"
    if "python/" in problem or "could not determine a constructor" in problem:
        problem = f"unsupported YAML tag ({problem}); only plain YAML is accepted"
    return ManifestError(file, mark.line + 1 if mark is not None else None, None, f"invalid YAML: {problem}")


def documents(file: str, content: bytes) -> Iterator[tuple[Any, Lines, list[ManifestError]]]:
    """Each document of `content` as (data, line of every field, errors); data is None on an error.

    The documents before a syntax error are still yielded, so that every error
    of a file is reported at once.
    """
    problem = undecodable(file, content)
    if problem is not None:
        yield None, {}, [problem]
        return
    loader, scanner = _Loader(content), _Loader(content)
    try:
        scanner.get_event()  # StreamStart; from here one document at a time, ahead of the loader
        while loader.check_node():
            deep = _too_deep(scanner)
            if deep is not None:
                message = f"invalid YAML: nested deeper than {MAX_DEPTH} levels"
                yield None, {}, [ManifestError(file, deep, None, message)]
                return
            node = loader.get_node()
            if node is None:
                continue
            lines: Lines = {}
            errors: list[ManifestError] = []
            _line_map(file, node, (), lines, errors, set())
            try:
                data = loader.construct_document(node)
            except (ValueError, OverflowError) as exc:  # an impossible date such as 2026-13-45
                errors.append(ManifestError(file, node.start_mark.line + 1, None, f"invalid YAML: {exc}"))
                data = None
            yield data, lines, errors
    except yaml.YAMLError as exc:
        yield None, {}, [_yaml_error(file, exc)]
    finally:
        loader.dispose()
        scanner.dispose()
