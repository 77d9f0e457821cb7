"""A FHIR R4 Questionnaire per protocol, generated from its input model, and reading the answers back.

Each item's linkId is the input field's dotted path (`symptoms.dysuria`), its type follows the
field's type (boolean, integer, decimal, string, choice, group), and an item is required when the
field is required and no coded resource can settle it (the protocol's `fhir.toml`). The
questionnaire therefore changes whenever the input model does, and can never ask a question the
model does not read.
"""

from __future__ import annotations

import types
import typing
from enum import Enum
from functools import cache
from typing import Any

from pydantic import BaseModel

from clinreason.fhir.models import r4
from clinreason.protocols.plain import field_label
from clinreason.protocols.spec import ProtocolSpec

CANONICAL_BASE = "https://clinreason.org/fhir"


def canonical_url(protocol_id: str) -> str:
    return f"{CANONICAL_BASE}/Questionnaire/{protocol_id}"


def code_system(protocol_id: str) -> str:
    return f"{CANONICAL_BASE}/CodeSystem/{protocol_id}"


def protocol_of_canonical(url: Any) -> str | None:
    """The protocol whose questionnaire a canonical URL (optionally `|version`) names."""
    if not isinstance(url, str) or not url.startswith(f"{CANONICAL_BASE}/Questionnaire/"):
        return None
    return url.removeprefix(f"{CANONICAL_BASE}/Questionnaire/").split("|", 1)[0] or None


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(the field's base type, whether it is a list), through Optional, unions of numbers and Annotated."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [_unwrap(a)[0] for a in typing.get_args(annotation) if a is not type(None)]
        return (float if set(args) <= {int, float} and float in args else args[0]), False
    if origin is list:
        return _unwrap(typing.get_args(annotation)[0])[0], True
    return annotation, False


def _items(spec: ProtocolSpec, model: type[BaseModel], prefix: str, settled: set[str], parent_required: bool) -> list[dict[str, Any]]:
    out = []
    labels = spec.wording.field_labels
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        base, repeats = _unwrap(info.annotation)
        required = parent_required and info.is_required() and path not in settled
        text = (info.description or "").strip()
        label = field_label(name, labels)
        item: dict[str, Any] = {"linkId": path, "text": text or f"{label[:1].upper()}{label[1:]}"}
        if isinstance(base, type) and issubclass(base, BaseModel):
            item |= {"type": "group", "item": _items(spec, base, f"{path}.", settled, required)}
        elif isinstance(base, type) and issubclass(base, Enum):
            item |= {"type": "choice", "answerOption": [{"valueCoding": {"system": code_system(spec.id), "code": str(m.value),
                                                                         "display": str(m.value).replace("_", " ")}} for m in base]}
        elif path == "locale_code":
            item |= {"type": "choice", "answerOption": [{"valueCoding": {"system": code_system(spec.id), "code": loc, "display": loc}}
                                                        for loc in sorted(spec.locales)]}
        else:
            item["type"] = {bool: "boolean", int: "integer", float: "decimal"}.get(base, "string")
        if required:
            item["required"] = True
        if repeats:
            item["repeats"] = True
        out.append(item)
    return out


def questionnaire(spec: ProtocolSpec) -> dict[str, Any]:
    """The protocol's Questionnaire resource (FHIR R4), validated with fhirclient's models."""
    resource = {
        "resourceType": "Questionnaire", "id": spec.id, "url": canonical_url(spec.id), "version": spec.version,
        "name": "".join(w.capitalize() for w in spec.id.split("-")), "title": f"{spec.title}: assessment questions",
        "status": "active", "subjectType": ["Patient"],
        "description": "Generated from the protocol's input model. Items whose linkId a coded resource settles (Patient, "
                       "Observation, Condition, MedicationStatement, AllergyIntolerance) may be left unanswered when the "
                       "Bundle holds that resource.",
        "item": _items(spec, spec.input_model, "", spec.fhir.mapped_fields(), True),
    }
    return r4("questionnaire", "Questionnaire")(resource, strict=True).as_json()


@cache
def _field_items(spec_id: str) -> dict[str, dict[str, Any]]:
    from clinreason.protocols.registry import get_spec

    out: dict[str, dict[str, Any]] = {}

    def walk(items: list[dict[str, Any]]) -> None:
        for it in items:
            if it["type"] == "group":
                walk(it["item"])
            else:
                out[it["linkId"]] = it
    spec = get_spec(spec_id)
    walk(_items(spec, spec.input_model, "", spec.fhir.mapped_fields(), True))
    return out


def field_items(spec: ProtocolSpec) -> dict[str, dict[str, Any]]:
    """linkId -> its (non-group) item."""
    return _field_items(spec.id)


def answer_to_value(item: dict[str, Any], answer: dict[str, Any]) -> Any:
    """The input value of one QuestionnaireResponse answer to `item`; ValueError names what is wrong."""
    kind = item["type"]
    if kind == "boolean" and isinstance(answer.get("valueBoolean"), bool):
        return answer["valueBoolean"]
    if kind == "integer" and isinstance(answer.get("valueInteger"), int):
        return answer["valueInteger"]
    if kind == "decimal":
        for key in ("valueDecimal", "valueInteger"):
            if isinstance(answer.get(key), int | float) and not isinstance(answer.get(key), bool):
                return answer[key]  # as written: 45 and 45.0 are the same value, and the input hash keeps the spelling
    if kind == "string" and isinstance(answer.get("valueString"), str):
        return answer["valueString"]
    if kind == "choice":
        allowed = {o["valueCoding"]["code"] for o in item["answerOption"]}
        coding = answer.get("valueCoding") or {}
        code = coding.get("code") if isinstance(coding, dict) else None
        system = coding.get("system") if isinstance(coding, dict) else None
        code = code if code is not None else answer.get("valueString")
        if code in allowed and system in (None, item["answerOption"][0]["valueCoding"]["system"]):
            return code
        raise ValueError(f"{code!r} is not one of {', '.join(sorted(allowed))}")
    expected = {"boolean": "valueBoolean", "integer": "valueInteger", "decimal": "valueDecimal", "string": "valueString"}[kind]
    got = next((k for k in answer if k.startswith("value")), "no value")
    raise ValueError(f"expected {expected}, got {got}")
