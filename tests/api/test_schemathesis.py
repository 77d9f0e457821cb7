"""Schemathesis against the app's own OpenAPI spec: no input yields a server error."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from clinreason.api.app import create_app
from clinreason.config import Settings


@pytest.fixture(scope="module")
def fuzz_key(offline_pipeline) -> str:
    return offline_pipeline.store.create_key("schemathesis", "admin")


@pytest.fixture(scope="module")
def fuzz_schema(offline_pipeline):
    app = create_app(Settings(rate_limit=10**6), pipeline=offline_pipeline)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("fuzz_schema")


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, fuzz_key):
    response = case.call(headers={"Authorization": f"Bearer {fuzz_key}"})
    assert response.status_code < 500, f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
    if response.status_code >= 400:
        content_type = response.headers["content-type"]  # schemathesis gives a list of values
        assert (content_type[0] if isinstance(content_type, list) else content_type).startswith("application/problem+json")
