"""Fixtures of the CDS Hooks tests: the EHR's keys and FHIR server, and clinreason served in-process
(TestClient) and over HTTP (uvicorn on a free 127.0.0.1 port, stopped at teardown). Helpers: cds_ehr.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cds_ehr import Ehr, EhrClient, FhirServer, Keys, cds_settings
from fastapi.testclient import TestClient
from served import served

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



@pytest.fixture(scope="module")
def http_server(offline_pipeline, keys) -> Iterator[str]:
    """uvicorn serving the app on a free 127.0.0.1 port, in a thread; always stopped at teardown."""
    with served(create_app(cds_settings(keys), pipeline=offline_pipeline)) as base:
        yield base
