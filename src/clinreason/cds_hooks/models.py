"""CDS Hooks 2.0 objects as pydantic models, with the spec's own field names.

Requests (hook calls, feedback) allow extra members: the spec reserves `extension`, and clients add
fields of newer hook versions. Responses forbid them, and are dumped with `exclude_none`: the spec
says an optional member without a value is omitted, never null or empty.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

Hook = Literal["patient-view", "order-select", "order-sign"]
HOOKS: tuple[Hook, ...] = ("patient-view", "order-select", "order-sign")
SUMMARY_MAX = 139  # "<140-character summary"


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class _In(BaseModel):
    model_config = ConfigDict(extra="allow")


def _not_empty(value: Any) -> Any:
    if value is not None and len(value) == 0:
        raise ValueError("omit it instead of sending it empty")
    return value


# --- shared ------------------------------------------------------------------------------------
class Coding(_Out):
    code: str = Field(min_length=1)
    system: str = Field(min_length=1)
    display: str | None = Field(default=None, min_length=1)


class CodingIn(_In):
    code: str = Field(min_length=1)
    system: str = Field(min_length=1)
    display: str | None = None


# --- discovery ---------------------------------------------------------------------------------
class Service(_Out):
    hook: Hook
    title: str | None = None
    description: str = Field(min_length=1)
    id: str = Field(pattern=r"^[A-Za-z0-9._~-]+$")
    prefetch: dict[str, str] | None = None
    usageRequirements: str | None = None

    _prefetch = field_validator("prefetch")(classmethod(lambda cls, v: _not_empty(v)))


class Discovery(_Out):
    services: list[Service]


# --- cards -------------------------------------------------------------------------------------
class Source(_Out):
    label: str = Field(min_length=1)
    url: str | None = Field(default=None, pattern=r"^https?://")
    icon: str | None = Field(default=None, pattern=r"^https?://")
    topic: Coding | None = None


class Action(_Out):
    type: Literal["create", "update", "delete"]
    description: str = Field(min_length=1)
    resource: dict[str, Any] | None = None
    resourceId: str | None = Field(default=None, pattern=r"^[A-Za-z]+/[A-Za-z0-9.-]{1,64}$")

    @model_validator(mode="after")
    def _target(self) -> Action:
        if self.type in ("create", "update") and not (self.resource and self.resource.get("resourceType")):
            raise ValueError(f"a {self.type} action holds the FHIR resource")
        if self.type == "delete" and self.resourceId is None:
            raise ValueError("a delete action names the resource in resourceId")
        return self


class Suggestion(_Out):
    label: str = Field(min_length=1)
    uuid: str | None = None
    isRecommended: bool | None = None
    actions: list[Action] | None = None

    _actions = field_validator("actions")(classmethod(lambda cls, v: _not_empty(v)))


class Link(_Out):
    label: str = Field(min_length=1)
    url: str = Field(pattern=r"^https?://")
    type: Literal["absolute", "smart"]
    appContext: str | None = None
    autolaunchable: bool | None = None

    @model_validator(mode="after")
    def _app_context(self) -> Link:
        if self.appContext is not None and self.type != "smart":
            raise ValueError("appContext is valid for smart links only")
        return self


class Card(_Out):
    uuid: str | None = None
    summary: str = Field(min_length=1, max_length=SUMMARY_MAX)
    detail: str | None = Field(default=None, min_length=1)
    indicator: Literal["info", "warning", "critical"]
    source: Source
    suggestions: list[Suggestion] | None = None
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[Coding] | None = None
    links: list[Link] | None = None

    _lists = field_validator("suggestions", "overrideReasons", "links")(classmethod(lambda cls, v: _not_empty(v)))

    @model_validator(mode="after")
    def _conditional(self) -> Card:
        if self.suggestions and self.selectionBehavior is None:
            raise ValueError("suggestions need a selectionBehavior")
        if self.selectionBehavior == "at-most-one" and sum(bool(s.isRecommended) for s in self.suggestions or ()) > 1:
            raise ValueError("at most one suggestion is recommended when the user may choose at most one")
        if any(r.display is None for r in self.overrideReasons or ()):
            raise ValueError("override reasons carry a display")
        uuids = [s.uuid for s in self.suggestions or () if s.uuid]
        if len(uuids) != len(set(uuids)):
            raise ValueError("suggestion uuids repeat")
        return self


class CdsResponse(_Out):
    cards: list[Card]
    systemActions: list[Action] | None = None

    _actions = field_validator("systemActions")(classmethod(lambda cls, v: _not_empty(v)))


# --- hook requests -----------------------------------------------------------------------------
class FhirAuthorization(_In):
    access_token: str = Field(min_length=1)
    token_type: Literal["Bearer"]
    expires_in: int
    scope: str
    subject: str
    patient: str | None = None


class HookRequest(_In):
    hook: str = Field(min_length=1)
    hookInstance: str = Field(min_length=1, max_length=200)
    fhirServer: str | None = Field(default=None, pattern=r"^https?://[^\s]+$", max_length=2000)
    fhirAuthorization: FhirAuthorization | None = None
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _server(self) -> HookRequest:
        if self.fhirAuthorization is not None and self.fhirServer is None:
            raise ValueError("fhirServer is required when fhirAuthorization is given")
        return self


class _Context(_In):
    userId: str = Field(min_length=1)
    patientId: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9.-]+$")  # a FHIR id
    encounterId: str | None = None


class Bundle(_In):
    resourceType: Literal["Bundle"]
    entry: list[dict[str, Any]] = Field(default_factory=list)


class PatientViewContext(_Context):
    """patient-view's context is the common one: the user, the patient and the encounter."""


class OrderSignContext(_Context):
    draftOrders: Bundle


class OrderSelectContext(OrderSignContext):
    selections: list[str] = Field(min_length=1)


CONTEXTS: dict[str, type[_Context]] = {
    "patient-view": PatientViewContext, "order-select": OrderSelectContext, "order-sign": OrderSignContext}


# --- feedback ----------------------------------------------------------------------------------
class AcceptedSuggestion(_In):
    id: str = Field(min_length=1)


class OverrideReason(_In):
    reason: CodingIn | None = None
    userComment: str | None = Field(default=None, max_length=4000)


class FeedbackItem(_In):
    card: str = Field(min_length=1, max_length=64)
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] | None = None
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: AwareDatetime

    @model_validator(mode="after")
    def _outcome(self) -> FeedbackItem:
        if self.outcome == "accepted" and not self.acceptedSuggestions:
            raise ValueError("an accepted outcome lists its acceptedSuggestions")
        if self.outcome == "overridden" and self.acceptedSuggestions:
            raise ValueError("an overridden card accepted no suggestion")
        return self


class FeedbackRequest(_In):
    feedback: list[FeedbackItem] = Field(min_length=1, max_length=100)
