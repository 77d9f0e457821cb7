from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from clinreason.api.app import create_app
from clinreason.config import Settings


class Api:
    """A TestClient plus keys for each role."""

    def __init__(self, client: TestClient, store):
        self.client = client
        self.keys = {role: store.create_key(f"test-{role}", role) for role in ("submitter", "prescriber", "admin")}
        self.store = store

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def post_patient(self, patient, role="submitter", **params):
        return self.client.post("/v1/assessments", json=patient, headers=self.headers(role), params=params)


def make_api(offline_pipeline, **settings) -> tuple[TestClient, Api]:
    app = create_app(Settings(**settings), pipeline=offline_pipeline)
    client = TestClient(app, raise_server_exceptions=False)
    client.__enter__()
    return client, Api(client, offline_pipeline.store)


@pytest.fixture
def api(offline_pipeline):
    client, a = make_api(offline_pipeline)
    yield a
    client.__exit__(None, None, None)


@pytest.fixture
def api_factory(offline_pipeline):
    made = []

    def make(**settings) -> Api:
        client, a = make_api(offline_pipeline, **settings)
        made.append(client)
        return a
    yield make
    for client in made:
        client.__exit__(None, None, None)
