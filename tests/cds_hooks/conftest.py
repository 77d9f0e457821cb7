"""Fixtures of the CDS Hooks tests: the EHR's keys and FHIR server, and clinreason served in-process
(TestClient) and over HTTP (uvicorn on a free 127.0.0.1 port, stopped at teardown). Helpers: cds_ehr.py."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from cds_ehr import Ehr, EhrClient, FhirServer, Keys, cds_settings
from fastapi.testclient import TestClient

from clinreason.api.app import create_app


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys()


@pytest.fixture(scope="module")
def app_client(offline_pipeline, keys) -> Iterator[TestClient]:
    with TestClient(create_app(cds_settings(keys), pipeline=offline_pipeline), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def ehr(keys) -> Ehr:
    return Ehr(keys, "http://testserver")


@pytest.fixture
def client(app_client, ehr) -> EhrClient:
    return EhrClient(app_client, ehr)


@pytest.fixture
def fhir_server() -> Iterator[FhirServer]:
    server = FhirServer()
    try:
        yield server
    finally:
        server.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def http_server(offline_pipeline, keys) -> Iterator[str]:
    """uvicorn serving the app on a free 127.0.0.1 port, in a thread; always stopped at teardown."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(cds_settings(keys), pipeline=offline_pipeline), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
