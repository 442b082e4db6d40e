"""The shared paging helper: follows tokens, and never loops on a repeated token."""

from typing import Any

import pytest

from homeostat.reconcilers.aws import ListingCutShort, aws_errors, pages


def fake_listing(tokens: list[str | None]) -> tuple[Any, list[dict[str, Any]]]:
    calls: list[dict[str, Any]] = []

    def call(**kwargs: Any) -> dict[str, Any]:
        calls.append(dict(kwargs))
        following = tokens[len(calls) - 1]
        return {"Items": [len(calls)], **({"NextToken": following} if following else {})}

    return call, calls


def test_pages_follows_the_token_until_the_last_page() -> None:
    """Each call after the first carries the previous page's token; the query stays the same."""
    call, calls = fake_listing(["a", "b", None])
    assert [p["Items"] for p in pages(call, "NextToken", MaxRecords=100)] == [[1], [2], [3]]
    assert calls == [
        {"MaxRecords": 100},
        {"MaxRecords": 100, "NextToken": "a"},
        {"MaxRecords": 100, "NextToken": "b"},
    ]


def test_a_repeated_token_cuts_the_listing_short_instead_of_looping() -> None:
    """A repeated token ends the listing with an error every reconciler treats like an AWS one."""
    call, calls = fake_listing(["a", "b", "a", None])
    with pytest.raises(ListingCutShort, match="repeated NextToken 'a'"):
        list(pages(call, "NextToken"))
    assert len(calls) == 3
    assert issubclass(ListingCutShort, aws_errors())
