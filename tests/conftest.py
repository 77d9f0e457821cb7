"""Shared fixtures. Tracing and telemetry stay off and nothing reaches the network."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import hl7_packages

os.environ.setdefault("WEAVE_DISABLED", "true")
os.environ.setdefault("WANDB_ERROR_REPORTING", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# One throwaway data dir per test session (index, caches, stores); CLI
# subprocesses inherit it, so the index is embedded once per run.
os.environ["CLINREASON_DATA_DIR"] = tempfile.mkdtemp(prefix="clinreason-test-")



pytest_plugins = ["fake_openai"]  # the scripted OpenAI-compatible server fixture


@pytest.fixture(scope="session")
def kb_index():
    """The real knowledge-base index (MiniLM + Chroma + BM25), built once per session."""
    from clinreason.knowledge.retrieval import get_index

    return get_index()


@pytest.fixture(scope="session")
def offline_pipeline(kb_index):
    """Rules backend, SQLite under the session data dir (index already built)."""
    from clinreason.config import Settings
    from clinreason.pipeline import Pipeline

    return Pipeline(Settings())


@pytest.fixture
def llm_pipeline(kb_index, fake_openai) -> Callable[..., object]:
    """A pipeline whose doctor and pharmacist talk to the scripted server, one model each."""
    from clinreason.config import Settings
    from clinreason.pipeline import Pipeline

    def make(**overrides) -> Pipeline:
        settings = dict(
            agent_backend="llm", llm_base_url=fake_openai.base_url, llm_api_key="test-key",
            doctor_model="doctor-model", pharmacist_model="pharmacist-model",
            llm_timeout=2.0, llm_max_retries=0,
        )
        settings.update(overrides)
        return Pipeline(Settings(**settings))
    return make


POSTGRES_URL = os.environ.get("CLINREASON_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_url():
    """A throwaway schema on the local PostgreSQL, so runs never see each other's rows."""
    import uuid

    import psycopg  # declared in the postgres extra: a missing package is a failure, not a skip
    schema = f"clinreason_test_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            raise  # CI machines run PostgreSQL: a missing server is a failure there
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}")
    admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


# --- HL7's published FHIR example packages (tests/hl7_packages.py fetches them with npm) -----------
@pytest.fixture(scope="session")
def hl7() -> dict[str, Path]:
    """`r4_examples` and `ips`: the `package/` folders of hl7.fhir.r4.examples@4.0.1 and hl7.fhir.uv.ips@2.0.0."""
    return hl7_packages.ensure()


@pytest.fixture(scope="session")
def hl7_resource(hl7: dict[str, Path]) -> Callable[[str, str], dict[str, Any]]:
    """hl7_resource("r4_examples", "Observation-f205.json") -> that resource, as published."""

    def load(package: str, name: str) -> dict[str, Any]:
        root = hl7[package]
        path = root / name if (root / name).is_file() else root / "example" / name
        return json.loads(path.read_text(encoding="utf-8"))
    return load
