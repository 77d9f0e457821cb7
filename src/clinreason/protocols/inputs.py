"""Building blocks of every protocol's input model: strict models, clean free text,
field-level errors. A protocol's own model lives in its package."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, WithJsonSchema
from pydantic_core import PydanticCustomError

from clinreason.errors import FieldError, InvalidPatient
from clinreason.hygiene import clean_text, mixed_script_message


def _hygiene(value: Any) -> Any:
    """Free text is normalised before anything reads it; a word mixing scripts is refused, not guessed."""
    if not isinstance(value, str):
        return value  # the str type check reports it
    cleaned = clean_text(value)
    if (message := mixed_script_message(cleaned)) is not None:
        raise PydanticCustomError("mixed_script", "{message}", {"message": message})
    return cleaned


# Every free-text field of the input: NFKC, invisible characters removed, spaces folded.
CleanText = Annotated[str, BeforeValidator(_hygiene)]
# One entry of a medication or allergy list. The 1-200 character check is the model's own validator
# (its message names the entry); the schema states it for clients.
EntryText = Annotated[str, BeforeValidator(_hygiene), WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 200})]


class Sex(StrEnum):
    """Sex assigned at birth."""

    female = "female"
    male = "male"
    other = "other"
    unknown = "unknown"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def reject_double_spelling(data: Any, a: str, b: str) -> Any:
    if isinstance(data, dict) and a in data and b in data:
        raise PydanticCustomError(
            "duplicate_field", f"give either '{a}' or '{b}', not both"
        )
    return data


def _field_path(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif str(item).startswith("function-"):
            continue  # validator tags, not user-facing
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "(root)"


def errors_from_validation(exc: ValidationError, contradiction_fields: Mapping[str, str] = {}) -> list[FieldError]:
    out: list[FieldError] = []
    seen: set[tuple[str, str]] = set()
    for err in exc.errors(include_url=False):
        path = _field_path(err["loc"])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field (not part of the patient schema)"
        elif err["type"] in {"contradiction", "text_length"}:
            field = contradiction_fields.get(msg)
            if field:
                path = f"{path}.{field}" if path != "(root)" else field
        elif err["type"] == "missing":
            msg = "required field is missing"
        key = (path, msg)
        if key not in seen:
            seen.add(key)
            out.append(FieldError(path, msg, err["type"]))
    return out


def parse_input(model: type[BaseModel], data: Any, *, contradiction_fields: Mapping[str, str] = {},
                raw_contradictions: Callable[[dict[str, Any]], list[FieldError]] | None = None) -> Any:
    """Validate raw JSON-like data into `model` or raise InvalidPatient naming every offending field."""
    if isinstance(data, model):
        return data
    if not isinstance(data, dict):
        raise InvalidPatient([FieldError("(root)", f"expected a JSON object, got {type(data).__name__}", "type")])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = errors_from_validation(exc, contradiction_fields)
        # Model-level checks do not run when a field fails, so report the
        # contradictions visible in the raw data too: every error at once.
        if raw_contradictions is not None and not any(e.type == "contradiction" for e in errors):
            errors += raw_contradictions(data)
        raise InvalidPatient(errors) from None
