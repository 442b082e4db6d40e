"""The AWS seam reconcilers see: clients built once by the operator, and error text."""

from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError


class AwsClients(Protocol):
    """Gives one long-lived boto3 client per service name (e.g. "ecs")."""

    def client(self, service: str) -> Any: ...


AWS_ERRORS = (ClientError, BotoCoreError)


def error_code(exc: BaseException) -> str | None:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "") or None
    return None


def describe_error(exc: BaseException) -> str:
    """A one-line, operator-readable form of an AWS failure."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        operation = getattr(exc, "operation_name", "call")
        return f"{operation} failed: {error.get('Code', 'Error')}: {error.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"


def chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
