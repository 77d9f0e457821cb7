from __future__ import annotations

import sys

import pytest
from fastapi.testclient import TestClient

from clinreason.api.app import create_app
from clinreason.config import Settings


class Api:
    """A TestClient plus keys for each role."""

    def __init__(self, client: TestClient, store):
        self.client = client
        self.keys = {role: store.create_key(f"test-{role}", role, "pharmacy-a") for role in ("submitter", "prescriber", "admin")}
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


def _server_class():
    module = sys.modules.get("test_server")  # loaded by test_server.py, or by a test importing Server from it
    return None if module is None else module.Server


@pytest.fixture(autouse=True)
def _stop_servers_left_running():
    """Whatever a test did, no `clinreason serve` it started (test_server.Server) outlives it.
    Servers already running (a module- or session-scoped fixture's) are left to their fixture."""
    server = _server_class()
    running = set(server.live) if server else set()
    yield
    server = _server_class()
    if server is not None:
        server.stop_all(keep=running)


@pytest.fixture(scope="session", autouse=True)
def _stop_every_server_at_the_end():
    yield
    server = _server_class()
    if server is not None:
        server.stop_all()
