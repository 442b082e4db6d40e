"""Manifest building blocks shared by every kind: strict base models, metadata, the spec base.

Each kind's own manifest model lives in its kind module (`homeostat.reconcilers.<kind>`),
built from these blocks, and reaches the loader through the kind table the operator hands
it (`validation.KindTable`): this layer knows no kind by model. Field descriptions here are
the single source of the JSON Schema (`homeostat schema`) and editor tooltips.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from homeostat.desired_state.identifiers import API_VERSION

NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
AWS_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:/+=@-]{0,254}$"
# An AWS region name: eu-west-1, us-east-1, us-gov-west-1, ap-southeast-2.
REGION_PATTERN = r"^[a-z]{2}(-[a-z]+)+-\d$"


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


class Hold(Strict):
    """A bounded hold: `suspend` that ends by itself at `until`, with the reason people see.

    On-call engineers freeze a resource during an incident and forget it; an expiry and a
    reason make the freeze visible and self-ending (contract section 2)."""

    until: Annotated[
        AwareDatetime,
        Field(description="RFC 3339 instant with an offset; the resource is reconciled again from then on."),
    ]
    reason: Annotated[
        str,
        Field(
            min_length=1,
            max_length=1024,
            description="Why it is held; shown in status, the page and the history.",
        ),
    ]

    @field_validator("until", mode="before")
    @classmethod
    def _an_instant(cls, value: Any) -> Any:
        # A YAML timestamp arrives as a datetime, a quoted one as text; a number would be read as
        # epoch seconds by pydantic's lax mode, which is no RFC 3339 instant.
        if not isinstance(value, str | datetime):
            raise ValueError("until must be an RFC 3339 instant with an offset, such as 2026-12-02T09:00:00Z")
        return value

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("reason must not be blank")
        return value


class SpecBase(Strict):
    """The fields every kind's spec has: the operator reads them without knowing the kind."""

    suspend: Annotated[
        StrictBool | Hold,
        Field(
            description="true: not reconciled at all (until the manifest changes); status says Suspended. "
            "{until, reason}: a bounded hold, reconciled again from `until` on."
        ),
    ] = False
    dryRun: Annotated[
        StrictBool,
        Field(description="Observed and diffed; actions are recorded as dry-run, never applied."),
    ] = False
    region: Annotated[
        str | None,
        Field(
            pattern=REGION_PATTERN,
            description="The AWS region of the resource, such as eu-west-1 (default: the daemon's "
            "region, --region or AWS_DEFAULT_REGION). Cross-document checks compare resources of "
            "one region; a resource without region is in a region of its own for them.",
        ),
    ] = None

    @field_validator("suspend", mode="wrap")
    @classmethod
    def _one_form(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        # Decided by the form, so a bad hold gets its own located errors (spec.suspend.until)
        # rather than one per branch of the union (`bool`, `Hold`).
        if isinstance(value, Mapping):
            return Hold.model_validate(value)
        if isinstance(value, bool | Hold):
            return handler(value)
        raise ValueError("must be true, false or a mapping {until, reason}")

    def held(self, now: datetime) -> bool:
        """Whether the resource is suspended at `now`: `true`, or a bounded hold not yet expired. Pure."""
        return self.suspend is True or (isinstance(self.suspend, Hold) and now < self.suspend.until)

    @property
    def hold(self) -> Hold | None:
        """The bounded hold, if `suspend` is one (held or expired)."""
        return self.suspend if isinstance(self.suspend, Hold) else None


class ManifestBase(Strict):
    """apiVersion, kind and metadata; a kind model narrows `kind` to its Literal and types `spec`."""

    apiVersion: Annotated[Literal["homeostat/v1"], Field(description=f"Always {API_VERSION}.")]
    kind: str
    metadata: Metadata
    spec: SpecBase


class CapacityBounds(Strict):
    """A minimum and a maximum capacity (ECS autoscaling tasks, Aurora Serverless v2 ACUs); a
    kind narrows the two fields' types and limits. The minimum must not exceed the maximum."""

    minCapacity: float
    maxCapacity: float

    @model_validator(mode="after")
    def _ordered(self) -> "CapacityBounds":
        if self.minCapacity > self.maxCapacity:
            raise ValueError("minCapacity must not exceed maxCapacity")
        return self


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
