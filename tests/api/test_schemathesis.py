"""Schemathesis against the app's own OpenAPI spec: no input yields a server error.

Driven through plain Hypothesis strategies per operation (schema-valid and
schema-violating inputs), not the schemathesis pytest plugin, so it does not
depend on pytest internals.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from clinreason.api.app import create_app
from clinreason.config import Settings

# The app builds its pipeline on first use, in the session's data dir.
SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", create_app(Settings(rate_limit=10**6)))
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


def _can_be_invalid(op) -> bool:
    """Only a body or query parameters can be made schema-invalid (a path id is any string)."""
    raw = op.definition.raw
    return "requestBody" in raw or any(p.get("in") == "query" for p in raw.get("parameters", []))


CASES = [pytest.param(op, GenerationMode.POSITIVE, id=f"{op.method.upper()} {op.path} valid") for op in OPERATIONS]
CASES += [pytest.param(op, GenerationMode.NEGATIVE, id=f"{op.method.upper()} {op.path} invalid") for op in OPERATIONS if _can_be_invalid(op)]


@pytest.fixture(scope="module")
def fuzz_key(kb_index) -> str:
    from clinreason.store import Store

    return Store(Settings()).create_key("schemathesis", "admin")


def test_every_operation_is_fuzzed():
    assert {f"{o.method.upper()} {o.path}" for o in OPERATIONS} >= {
        "POST /v1/assessments", "GET /v1/assessments", "GET /v1/assessments/{assessment_id}",
        "GET /v1/assessments/{assessment_id}/report", "POST /v1/assessments/{assessment_id}/signoff",
        "GET /healthz", "GET /readyz", "GET /metrics"}


@pytest.mark.parametrize(("operation", "mode"), CASES)
def test_no_server_errors(operation, mode, fuzz_key):
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case):
        response = case.call(headers={"Authorization": f"Bearer {fuzz_key}"})
        assert response.status_code < 500, f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
        if response.status_code >= 400:
            content_type = response.headers["content-type"]
            content_type = content_type[0] if isinstance(content_type, list) else content_type
            assert content_type.startswith("application/problem+json"), content_type

    check()
