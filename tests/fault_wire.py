"""The wire side of the fault injector: AWS errors in each protocol, and paging moto's whole listings.

AWS clients parse errors by protocol (query XML, JSON 1.0/1.1 with
`__type`, CBOR), so an injected error must be written in the protocol the
request used; and moto ignores page sizes, so the injector cuts pages itself
with its own continuation tokens.
"""

import io
import json
import uuid
import xml.etree.ElementTree as ET
from contextlib import suppress
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl, urlencode

from homeostat.operator.local_aws import request_operation

Operation = tuple[str, str]  # (service as signed, e.g. "monitoring"; operation, e.g. "DescribeAlarms")
Answer = tuple[str, list[tuple[str, str]], bytes]  # status line, headers, body


class Protocol(StrEnum):
    QUERY = "query"
    JSON = "json"
    CBOR = "cbor"


@dataclass(frozen=True, slots=True)
class Listing:
    """A listing moto answers whole: where its items, page size and continuation token live."""

    items: tuple[str, ...]
    size: str
    token: str


LISTINGS: dict[Operation, Listing] = {
    ("rds", "DescribeDBClusterSnapshots"): Listing(("DBClusterSnapshots",), "MaxRecords", "Marker"),
    ("monitoring", "DescribeAlarms"): Listing(("MetricAlarms", "CompositeAlarms"), "MaxRecords", "NextToken"),
    ("ecs", "ListServices"): Listing(("serviceArns",), "maxResults", "nextToken"),
    ("ecs", "ListTaskDefinitions"): Listing(("taskDefinitionArns",), "maxResults", "nextToken"),
}
# The service's own throttling and server-fault codes (botocore retries both).
THROTTLE_CODES = {"rds": "Throttling", "monitoring": "Throttling"}
SERVER_CODES = {"rds": "InternalFailure", "monitoring": "InternalServiceError", "ecs": "ServerException"}
TOKEN_PREFIX = "faults-page-"


@dataclass
class WireRequest:
    service: str
    operation: str
    protocol: Protocol
    params: dict[str, Any]
    environ: dict[str, Any]
    body: bytes

    @classmethod
    def of(cls, environ: dict[str, Any], body: bytes) -> "WireRequest":
        service, operation = request_operation(environ, body)
        content_type = environ.get("CONTENT_TYPE", "")
        params: dict[str, Any] = {}
        if "cbor" in content_type or "/operation/" in environ.get("PATH_INFO", ""):
            protocol = Protocol.CBOR
        elif environ.get("HTTP_X_AMZ_TARGET"):
            protocol = Protocol.JSON
            with suppress(ValueError):  # a body cut short by a killed client is recorded without params
                params = json.loads(body or b"{}")
        else:
            protocol = Protocol.QUERY
            params = dict(parse_qsl(body.decode("utf-8", "replace")))
        return cls(service, operation, protocol, params, environ, body)

    def without(self, *keys: str) -> dict[str, Any]:
        """The environ of this request with `keys` removed from its parameters."""
        params = {k: v for k, v in self.params.items() if k not in keys}
        body = (json.dumps(params) if self.protocol is Protocol.JSON else urlencode(params)).encode()
        environ = dict(self.environ, CONTENT_LENGTH=str(len(body)))
        environ["wsgi.input"] = io.BytesIO(body)
        return environ


def page_of(listing: Listing, params: dict[str, Any]) -> tuple[int, int] | None:
    """(page number, offset) of a request for a page of `listing`; None when it asks for no page size."""
    if listing.size not in params:
        return None
    token = str(params.get(listing.token) or "")
    if not token.startswith(TOKEN_PREFIX):
        return 1, 0
    page, offset = token[len(TOKEN_PREFIX) :].split("-")
    return int(page), int(offset)


def cbor_text_map(values: dict[str, str]) -> bytes:
    """A CBOR map of short text strings (major types 5 and 3), enough for an error body."""

    def head(major: int, length: int) -> bytes:
        return bytes([major << 5 | length]) if length < 24 else bytes([major << 5 | 24, length])

    out = head(5, len(values))
    for key, value in values.items():
        for text in (key, value):
            raw = text.encode()
            out += head(3, len(raw)) + raw
    return out


def error_answer(request: WireRequest, status: int, code: str, message: str) -> Answer:
    """An AWS error in the protocol the request used (the query-compatible header for CloudWatch JSON)."""
    request_id = str(uuid.uuid4())
    line = f"{status} {'Bad Request' if status < 500 else 'Internal Server Error'}"
    headers = [("x-amzn-RequestId", request_id)]
    fault_type = "Sender" if status < 500 else "Receiver"
    if request.protocol is Protocol.QUERY:
        body = (
            f"<ErrorResponse><Error><Type>{fault_type}</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        return line, [*headers, ("Content-Type", "text/xml")], body
    headers.append(("x-amzn-query-error", f"{code};{fault_type}"))
    if request.protocol is Protocol.CBOR:
        body = cbor_text_map({"__type": code, "message": message})
        cbor_headers = [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]
        return line, [*headers, *cbor_headers], body
    version = "1.0" if "1.0" in request.environ.get("CONTENT_TYPE", "") else "1.1"
    body = json.dumps({"__type": code, "message": message}).encode()
    return line, [*headers, ("Content-Type", f"application/x-amz-json-{version}")], body


def cut_page(
    listing: Listing, protocol: Protocol, answer: Answer, position: tuple[int, int], size: int
) -> Answer:
    """The page of a whole listing that starts at `offset`, with a token for the next page if any."""
    status, headers, body = answer
    if not status.startswith("200"):
        return answer
    page, offset = position
    token = f"{TOKEN_PREFIX}{page + 1}-{offset + size}"
    if protocol is Protocol.JSON:
        data = json.loads(body)
        items = [(key, item) for key in listing.items for item in data.get(key, [])]
        for key in listing.items:
            if key in data:
                data[key] = [item for k, item in items[offset : offset + size] if k == key]
        data.pop(listing.token, None)
        if offset + size < len(items):
            data[listing.token] = token
        body = json.dumps(data).encode()
    else:
        root = ET.fromstring(body)  # noqa: S314  # moto's own answer on 127.0.0.1, not untrusted input
        namespace = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
        result = root[0]
        container = result.find(namespace + listing.items[0])
        members = list(container) if container is not None else []
        for gone in members[:offset] + members[offset + size :]:
            container.remove(gone)  # type: ignore[union-attr]  # members is empty when container is None
        for marker in result.findall(namespace + listing.token):
            result.remove(marker)
        if offset + size < len(members):
            ET.SubElement(result, namespace + listing.token).text = token
        body = ET.tostring(root)
    headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
    return status, [*headers, ("Content-Length", str(len(body)))], body
