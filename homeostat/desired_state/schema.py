"""The JSON Schema of a manifest document, for editors (yaml-language-server) and CI."""

from typing import Any

from pydantic import TypeAdapter

from homeostat.desired_state.models import Manifest


def manifest_schema() -> dict[str, Any]:
    schema = TypeAdapter(Manifest).json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "homeostat manifest"
    return schema
