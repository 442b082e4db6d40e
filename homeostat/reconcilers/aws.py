"""The AWS seam reconcilers see: clients built once by the operator, and error text.

botocore is imported inside the functions that need it, never at import time: the
registry of kinds (and with it `validate` and `schema`) must load without any AWS library.
"""

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol


class AwsClients(Protocol):
    """Gives one long-lived boto3 client per service name (e.g. "ecs")."""

    def client(self, service: str) -> Any: ...


class ListingCutShort(Exception):
    """A paged listing cannot be completed (e.g. the endpoint repeats a page token)."""


def aws_errors() -> tuple[type[Exception], ...]:
    """The exceptions an AWS call fails with (caught per call, turned into values)."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError, ListingCutShort)


def pages(call: Callable[..., Mapping[str, Any]], token: str, **kwargs: Any) -> Iterator[Mapping[str, Any]]:
    """Every page of a listing that continues with `token` (NextToken, Marker). Raises
    ListingCutShort when a token repeats: such a listing would never end, and is never complete."""
    seen: set[str] = set()
    while True:
        response = call(**kwargs)
        yield response
        following = response.get(token)
        if not following:
            return
        if following in seen:
            raise ListingCutShort(f"the listing repeated {token} {following!r}; it was cut short")
        seen.add(str(following))
        kwargs[token] = following


def error_code(exc: BaseException) -> str | None:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "") or None
    return None


def describe_error(exc: BaseException) -> str:
    """A one-line, operator-readable form of an AWS failure."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        operation = getattr(exc, "operation_name", "call")
        return f"{operation} failed: {error.get('Code', 'Error')}: {error.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"


def chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
