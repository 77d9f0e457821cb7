"""The OpenAPI document: FastAPI's, completed with what the routes cannot say themselves.

- the body models' schemas (the bodies are read by the strict parser in
  body.py, not by FastAPI, so FastAPI does not list them);
- the security schemes (a bearer key, or the same key in `X-API-Key`) and
  `security` on every operation that answers 401;
- the answers every path can give whatever its operation: 405 (another method;
  with `Allow`) and 431 (request headers too large);
- problem+json in place of FastAPI's default 422 schema, which this API never
  sends;
- the response headers of the problems that carry one (`WWW-Authenticate`,
  `Retry-After`, `Accept-Post`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pydantic import BaseModel

from clinreason.api.problems import problem_responses
from clinreason.protocols.spec import ProtocolSpec

REF = "#/components/schemas/{model}"
BEARER, API_KEY = "bearerAuth", "apiKeyHeader"
SECURITY_SCHEMES = {
    BEARER: {"type": "http", "scheme": "bearer", "description": "An API key from `clinreason keys create`: `Authorization: Bearer <key>`."},
    API_KEY: {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "The same key, in `X-API-Key` instead."},
}
# Answered for any path, whatever its operation: by routing (405) and by the header limit (431).
EVERY_OPERATION = (405, 431)
# The body of /readyz, 200 and 503 alike.
READINESS = {"type": "object", "required": ["status", "checks"], "properties": {
    "status": {"type": "string", "enum": ["ready", "not ready"]},
    "checks": {"type": "object", "additionalProperties": {"type": "string"}, "description": "ok, or error: <type>, per dependency"}}}
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def body_schema(model: str, example: Any = None, examples: dict[str, Any] | None = None) -> dict[str, Any]:
    """`openapi_extra` for a route whose JSON body is read by body.py: the body, documented as `model`."""
    media: dict[str, Any] = {"schema": {"$ref": REF.format(model=model)}}
    if example is not None:
        media["example"] = example
    if examples:
        media["examples"] = {name: {"value": value} for name, value in examples.items()}
    return {"requestBody": {"required": True, "content": {"application/json": media}}}


def complete(spec: dict[str, Any], models: Iterable[type[BaseModel]], protocols: Sequence[ProtocolSpec] = (),
             default_protocol: str | None = None) -> dict[str, Any]:
    """Complete FastAPI's spec (in place, and returned)."""
    components = spec.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for model in models:
        schema = model.model_json_schema(by_alias=True, ref_template=REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    if protocols:
        schemas["AssessmentRequest"] = {"oneOf": [_request_schema(p, p.id == default_protocol, schemas) for p in protocols],
                                        "description": "A patient under one registered protocol (`protocol`; absent: "
                                                       f"{default_protocol})."}
    components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)

    shared = problem_responses(*EVERY_OPERATION)
    for path_item in spec.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in METHODS:
                continue
            responses = operation.setdefault("responses", {})
            default_422 = responses.get("422", {}).get("content", {}).get("application/json", {}).get("schema", {})
            if default_422.get("$ref", "").endswith("/HTTPValidationError"):  # FastAPI's, added for any parameter
                if _cannot_be_invalid(operation):
                    del responses["422"]
                else:
                    responses["422"] = copy.deepcopy(problem_responses(422)[422])
            for code, response in shared.items():
                responses.setdefault(str(code), copy.deepcopy(response))
            if "401" in responses:
                operation["security"] = [{BEARER: []}, {API_KEY: []}]
    _drop_unused(schemas, spec, ("HTTPValidationError", "ValidationError"))
    return spec


def _request_schema(protocol: ProtocolSpec, default: bool, schemas: dict[str, Any]) -> dict[str, Any]:
    """A protocol's input model as a request body: its `protocol` field (optional for the default
    protocol), and the locales that select one of its profiles (checked after parsing, so stated
    here). Its nested models become components named after the protocol, so two protocols'
    `History` models never collide. Cross-field contradictions stay 422 field errors."""
    prefix = "".join(part.capitalize() for part in protocol.id.split("-"))
    raw = protocol.input_model.model_json_schema(by_alias=True, ref_template=REF.format(model=prefix + "{model}"))
    for name, sub in raw.pop("$defs", {}).items():
        schemas[prefix + name] = sub
    raw["title"] = f"{prefix}Request"
    raw.setdefault("properties", {})["protocol"] = {"const": protocol.id, "type": "string", "description": "The protocol."}
    if not default:
        raw["required"] = ["protocol", *raw.get("required", [])]
    locale = raw["properties"].get("locale_code")
    if locale is not None:
        locale["enum"] = sorted(protocol.locales)
    schemas[raw["title"]] = raw
    return {"$ref": REF.format(model=raw["title"])}


def _cannot_be_invalid(operation: dict[str, Any]) -> bool:
    """No body, and only path parameters that are any string: nothing for a 422 to be about."""
    return "requestBody" not in operation and all(
        p.get("in") == "path" and p.get("schema") == {"type": "string", "title": p["schema"].get("title")}
        for p in operation.get("parameters", []))


def _drop_unused(schemas: dict[str, Any], spec: dict[str, Any], names: Iterable[str]) -> None:
    """Remove FastAPI's validation-error schemas once nothing refers to them."""
    for name in names:
        if name in schemas:
            held = schemas.pop(name)
            if json.dumps(REF.format(model=name)) in json.dumps(spec):
                schemas[name] = held


def install(app: Any, models: Iterable[type[BaseModel]], protocols: Sequence[ProtocolSpec] = (),
            default_protocol: str | None = None) -> Callable[[], dict[str, Any]]:
    """The `app.openapi` that builds FastAPI's spec once and completes it."""
    original = app.openapi
    models = tuple(models)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(original(), models, protocols, default_protocol)
        return app.openapi_schema
    return openapi
