"""`--selector key=value,...`: which resources of the desired state one daemon reconciles.

Matching is equality-based, like a Kubernetes label selector: a resource is in the shard
when every pair is in its `metadata.labels`; no selector (the empty one) selects
everything. The canonical text (pairs sorted by key) names the shard: in its lease's lock
key, its history rows and its last-known-good slot. Imports nothing heavy: options parse
it before `--help` would load pydantic. Filtering a desired state is `shards.select`.
"""

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

# The canonical text is stored in every history row of the shard (a column of 512).
MAX_SELECTOR_CHARACTERS = 512


@dataclass(frozen=True, slots=True)
class Selector:
    """Label pairs, sorted by key (the canonical form: the same shard however it was spelled)."""

    pairs: tuple[tuple[str, str], ...] = ()

    @property
    def text(self) -> str:
        """`key=value,...` sorted by key; "" for the selector of everything."""
        return ",".join(f"{key}={value}" for key, value in self.pairs)

    @property
    def digest(self) -> str:
        """A stable short digest of the canonical text (lock file names)."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:16]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(key) == value for key, value in self.pairs)


EVERYTHING = Selector()


def parse_selector(text: str) -> Selector:
    """`key=value,...` (spaces around items ignored; a value may be empty) as a Selector; the
    empty text is EVERYTHING. Raises ValueError naming the first bad item."""
    if not text.strip():
        return EVERYTHING
    pairs: dict[str, str] = {}
    for item in text.split(","):
        key, equals, value = item.strip().partition("=")
        key, value = key.strip(), value.strip()
        if not equals:
            raise ValueError(f"expected key=value, got {item.strip()!r}")
        if not key:
            raise ValueError(f"empty label key in {item.strip()!r}")
        if key in pairs:
            raise ValueError(f"label key {key!r} given twice")
        pairs[key] = value
    selector = Selector(tuple(sorted(pairs.items())))
    if len(selector.text) > MAX_SELECTOR_CHARACTERS:
        raise ValueError(f"at most {MAX_SELECTOR_CHARACTERS} characters, got {len(selector.text)}")
    return selector
