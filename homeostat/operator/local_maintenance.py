"""Pending Aurora maintenance for the embedded local AWS: the two RDS operations moto lacks.

moto 5.2.5 answers DescribePendingMaintenanceActions and ApplyPendingMaintenanceAction
with HTTP 500 (botocore raises ResponseParserError). This WSGI middleware, placed in front
of moto's server app (`LocalAws(middleware=...)`), answers those two from a table and
passes every other request to moto, so a `homeostat` process talking to the local AWS
(the demo, an end-to-end test) sees pending actions with nothing injected into it. The
answers are RDS's query-protocol XML in the shape of AWS's API reference; an applied action
leaves the table at once (AWS lists it until the cluster has applied it), as moto settles
its other changes at once.
"""

import io
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from homeostat.desired_state.instants import rfc3339
from homeostat.operator.local_aws import request_operation

NAMESPACE = "http://rds.amazonaws.com/doc/2014-10-31/"
DESCRIBE = "DescribePendingMaintenanceActions"
APPLY = "ApplyPendingMaintenanceAction"
_DATES = ("AutoAppliedAfterDate", "ForcedApplyDate", "CurrentApplyDate")


class PendingMaintenance:
    """WSGI middleware: pending actions by cluster ARN (`add`), the applications it received
    (`applied`: ResourceIdentifier, ApplyAction, OptInType) and how often it was asked (`described`)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self.applied: list[dict[str, str]] = []
        self.described = 0

    def add(self, arn: str, action: str, description: str = "", **dates: datetime) -> None:
        """A pending action of the resource `arn`; `dates` by their AWS names (ForcedApplyDate, ...)."""
        unknown = set(dates) - set(_DATES)
        if unknown:
            raise ValueError(f"unknown dates {sorted(unknown)}: give {', '.join(_DATES)}")
        with self._lock:
            self._pending.setdefault(arn, []).append({"Action": action, "Description": description, **dates})

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        service, operation = request_operation(environ, body)
        if service != "rds" or operation not in {DESCRIBE, APPLY}:
            result: Iterable[bytes] = self.app(environ, start_response)
            return result
        form = dict(parse_qsl(body.decode("utf-8", "replace")))
        answer = self._describe(form) if operation == DESCRIBE else self._apply(form)
        start_response("200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(answer)))])
        return [answer]

    def _describe(self, form: Mapping[str, str]) -> bytes:
        wanted = {v for k, v in form.items() if k.startswith("Filters.") and ".Values." in k}
        with self._lock:
            self.described += 1
            rows = [
                (arn, list(d))
                for arn, d in sorted(self._pending.items())
                if d and (not wanted or arn in wanted)
            ]
        result = _response(DESCRIBE)
        listing = ET.SubElement(result, "PendingMaintenanceActions")
        for arn, details in rows:
            listing.append(_resource(arn, details))
        return _document(result)

    def _apply(self, form: Mapping[str, str]) -> bytes:
        arn, action = form.get("ResourceIdentifier", ""), form.get("ApplyAction", "")
        with self._lock:
            self.applied.append(
                {"ResourceIdentifier": arn, "ApplyAction": action, "OptInType": form.get("OptInType", "")}
            )
            left = [d for d in self._pending.get(arn, []) if d["Action"] != action]
            self._pending[arn] = left
        result = _response(APPLY)
        result.append(_resource(arn, left))
        return _document(result)


def _response(operation: str) -> ET.Element:
    return ET.Element(f"{operation}Result")


def _resource(arn: str, details: list[dict[str, Any]]) -> ET.Element:
    resource = ET.Element("ResourcePendingMaintenanceActions")
    ET.SubElement(resource, "ResourceIdentifier").text = arn
    listing = ET.SubElement(resource, "PendingMaintenanceActionDetails")
    for detail in details:
        item = ET.SubElement(listing, "PendingMaintenanceAction")
        for name, value in detail.items():
            if value:
                ET.SubElement(item, name).text = rfc3339(value) if isinstance(value, datetime) else str(value)
    return resource


def _document(result: ET.Element) -> bytes:
    operation = result.tag.removesuffix("Result")
    root = ET.Element(f"{operation}Response", xmlns=NAMESPACE)
    root.append(result)
    metadata = ET.SubElement(root, "ResponseMetadata")
    ET.SubElement(metadata, "RequestId").text = "local-pending-maintenance"
    text: bytes = ET.tostring(root, encoding="utf-8")
    return text
