"""Manifest building blocks shared by every kind: strict base models, metadata, the spec base.

Each kind's own manifest model lives in its kind module (`homeostat.reconcilers.<kind>`),
built from these blocks, and reaches the loader through the kind table the operator hands
it (`validation.KindTable`): this layer knows no kind by model. Field descriptions here are
the single source of the JSON Schema (`homeostat schema`) and editor tooltips.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from homeostat.desired_state.identifiers import API_VERSION

NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
AWS_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:/+=@-]{0,254}$"


class Strict(BaseModel):
    """Frozen, and every unknown field is an error (a typo must never be ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)


class Metadata(Strict):
    name: Annotated[
        str,
        Field(
            pattern=NAME_PATTERN,
            min_length=1,
            max_length=63,
            description="1-63 characters of [a-z0-9-], starting and ending alphanumeric; unique per kind.",
        ),
    ]
    labels: Annotated[dict[str, str], Field(default_factory=dict, description="Free-form string labels.")]


class SpecBase(Strict):
    """The fields every kind's spec has: the operator reads them without knowing the kind."""

    suspend: Annotated[
        StrictBool, Field(description="Not reconciled at all while true; status says Suspended.")
    ] = False
    dryRun: Annotated[
        StrictBool,
        Field(description="Observed and diffed; actions are recorded as dry-run, never applied."),
    ] = False


class ManifestBase(Strict):
    """apiVersion, kind and metadata; a kind model narrows `kind` to its Literal and types `spec`."""

    apiVersion: Annotated[Literal["homeostat/v1"], Field(description=f"Always {API_VERSION}.")]
    kind: str
    metadata: Metadata
    spec: SpecBase


class AlarmSelector(Strict):
    """CloudWatch alarms by name prefix or exact names; shared by every kind that selects alarms."""

    alarmNamePrefix: Annotated[
        str | None,
        Field(min_length=1, max_length=255, description="Select alarms whose name starts with this."),
    ] = None
    alarmNames: Annotated[
        tuple[Annotated[str, Field(min_length=1, max_length=255)], ...] | None,
        Field(min_length=1, description="Select these alarms by exact name."),
    ] = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "AlarmSelector":
        if (self.alarmNamePrefix is None) == (self.alarmNames is None):
            raise ValueError("give exactly one of alarmNamePrefix or alarmNames")
        return self

    def selects(self, alarm_name: str) -> bool:
        if self.alarmNamePrefix is not None:
            return alarm_name.startswith(self.alarmNamePrefix)
        return alarm_name in (self.alarmNames or ())
