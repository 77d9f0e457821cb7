"""Schemathesis against the app's own OpenAPI spec: every phase, every check, zero failures.

The schemathesis engine runs in-process against the ASGI app (as `st run --checks all`
would against a server): examples, coverage (which includes undeclared methods, missing
and malformed parameters), fuzzing (schema-valid and schema-violating inputs) and the
stateful phase (links inferred from Location headers). Every built-in check is on; the
only one idle is `max_response_time`, which needs a limit, and this suite never asserts
on timing (a shared, loaded machine).

One check is told about the API's documented rules that JSON Schema cannot state, and
only for the two operations they apply to: `positive_data_acceptance` expects a
schema-valid body to be accepted, but POST /v1/assessments refuses (422) patients (JSON or a FHIR Bundle) whose
fields contradict each other or whose words mix scripts, and an Idempotency-Key reused
with another body; a sign-off is refused (422) when its agent or acknowledged entries
do not fit the stored plan. So 422 is expected there, and the extra check
`schema_valid_422_is_a_documented_rule` below makes sure every such 422 is one of those
rules (for a patient: the app's own validator, run here on the bytes that were sent,
refuses it with the same fields) rather than a bug.
"""

from __future__ import annotations

import json
import os
from collections import Counter

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema

from clinreason.api.app import create_app
from clinreason.config import Settings

SEED = int(os.environ.get("CLINREASON_SCHEMATHESIS_SEED", "20240915"))
MAX_EXAMPLES = int(os.environ.get("CLINREASON_SCHEMATHESIS_EXAMPLES", "60"))
POSITIVE_DEFAULT = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]  # schemathesis' own default
CREATE, SIGNOFF = "POST /v1/assessments", "POST /v1/assessments/{assessment_id}/signoff"
# The 422s of schema-valid requests that are documented rules, by problem type.
DOCUMENTED_422 = {
    CREATE: {"urn:clinreason:problem:invalid-patient", "urn:clinreason:problem:idempotency-key-reused"},
    SIGNOFF: {"urn:clinreason:problem:invalid-signoff"},
}


@schemathesis.check
def schema_valid_422_is_a_documented_rule(ctx, response, case):
    """A schema-valid request answered 422 must be refused by a documented rule the schema cannot state."""
    label = case.operation.label
    meta = case.meta
    if response.status_code != 422 or label not in DOCUMENTED_422 or meta is None or not meta.generation.mode.is_positive:
        return None
    problem = json.loads(response.content)
    kind = problem.get("type")
    if kind not in DOCUMENTED_422[label]:
        raise AssertionError(f"schema-valid request refused with an undocumented 422: {problem}")
    if kind == "urn:clinreason:problem:idempotency-key-reused":
        assert "idempotency-key" in {k.lower() for k in response.request.headers}, problem
    if kind == "urn:clinreason:problem:invalid-patient":
        from urllib.parse import parse_qs, urlsplit

        from clinreason.api.body import parse_json
        from clinreason.api.routers.assessments import parse_body
        from clinreason.errors import InvalidPatient

        body = response.request.body
        query = {k: v[0] for k, v in parse_qs(urlsplit(response.request.url).query, keep_blank_values=True).items()}
        try:
            # The route's own reading of the body: JSON or a FHIR Bundle, with its query parameters.
            parse_body(parse_json(body if isinstance(body, bytes) else (body or "").encode()),
                       response.request.headers.get("content-type", ""), query.get("protocol"), query.get("locale_code"))
        except InvalidPatient as exc:
            expected = {e.field for e in exc.errors}
        else:
            raise AssertionError(f"the API refused a patient its own validator accepts: {problem}")
        assert {e["field"] for e in problem["errors"]} == expected, problem
    return None


def _config(key: str) -> SchemathesisConfig:
    documented_422 = {"checks": {"positive_data_acceptance": {"expected-statuses": [*POSITIVE_DEFAULT, "422"]}}}
    return SchemathesisConfig.from_dict({
        "seed": SEED,
        "generation": {"max-examples": MAX_EXAMPLES},
        "checks": {"enabled": True},  # every check, the custom one above included
        "auth": {"openapi": {"bearerAuth": {"bearer": key}}},
        "workers": 1,
        "operations": [
            {"include-path": "/v1/assessments", "include-method": "POST", **documented_422},
            {"include-path": "/v1/assessments/{assessment_id}/signoff", "include-method": "POST", **documented_422},
        ],
    })


@pytest.fixture(scope="module")
def schema(kb_index):
    from clinreason.store import Store

    key = Store(Settings()).create_key("schemathesis", "admin")  # a global admin: sees every site
    # The app builds its pipeline on first use, in the session's data dir.
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(Settings(rate_limit=10**6)), config=_config(key))


def test_every_operation_is_fuzzed(schema):
    assert {op.ok().label for op in schema.get_all_operations()} >= {
        "POST /v1/assessments", "GET /v1/assessments", "GET /v1/assessments/{assessment_id}",
        "GET /v1/assessments/{assessment_id}/report", "GET /v1/assessments/{assessment_id}/notification",
        "POST /v1/assessments/{assessment_id}/signoff",
        "GET /healthz", "GET /readyz", "GET /metrics"}


def test_all_checks_pass_in_every_phase(schema):
    failures: dict[tuple[str, str, str], str] = {}
    errors: list[str] = []
    cases, checks_run, statuses, stop = 0, Counter(), Counter(), None
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            rec = event.recorder
            cases += len(rec.cases)
            for interaction in rec.interactions.values():
                if interaction.response is not None:
                    statuses[interaction.response.status_code] += 1
            for case_id, nodes in rec.checks.items():
                for node in nodes:
                    checks_run[node.name] += 1
                    if node.status == Status.FAILURE and node.failure_info is not None:
                        failure = node.failure_info.failure
                        failures.setdefault((rec.label, node.name, failure.title),
                                            f"{failure.message}\n{node.failure_info.code_sample}"[:2000])
                    elif node.status == Status.ERROR:
                        errors.append(f"{rec.label}: check {node.name} crashed on case {case_id}")
        elif isinstance(event, (events.NonFatalError, events.FatalError)):
            errors.append(f"{type(event).__name__}: {getattr(event, 'label', '')}: {getattr(event, 'info', event)}"[:2000])
        elif isinstance(event, events.EngineFinished):
            stop = event.stop_reason
    summary = f"{cases} cases, statuses {dict(sorted(statuses.items()))}, checks {dict(sorted(checks_run.items()))}, stop: {stop}"
    print(summary)
    assert not errors, "\n".join(errors)
    assert not failures, summary + "\n\n" + "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
    assert cases >= 200, summary
    # The checks that ask for specific situations did get them.
    for name in ("not_a_server_error", "status_code_conformance", "response_schema_conformance", "positive_data_acceptance",
                 "negative_data_rejection", "unsupported_method", "ignored_auth", "schema_valid_422_is_a_documented_rule"):
        assert checks_run[name] > 0, (name, summary)
    assert {200, 201, 400, 401, 404, 405, 409, 422} <= set(statuses), summary
