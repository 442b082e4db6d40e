"""The JSON Schema of a manifest document, for editors (yaml-language-server) and CI.

Built from the kinds' models handed in (the registry's, in Kind order), so a kind's
schema entry exists exactly when the kind is registered.
"""

from collections.abc import Sequence
from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter

from homeostat.desired_state.models import ManifestBase


def manifest_schema(models: Sequence[type[ManifestBase]]) -> dict[str, Any]:
    """One `oneOf` over the given kind models, discriminated by `kind`. Pure."""
    # A union built at run time from the registered kinds: mypy cannot follow it.
    union: Any = Annotated[Union[tuple(models)], Field(discriminator="kind")]  # noqa: UP007
    schema = TypeAdapter(union).json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "homeostat manifest"
    return schema
