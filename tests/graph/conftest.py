from __future__ import annotations

from collections.abc import Callable

import pytest

from clinreason.config import Settings
from clinreason.pipeline import Pipeline


@pytest.fixture(scope="session")
def offline_pipeline(kb_index) -> Pipeline:
    """Rules backend, SQLite under the session data dir (index already built)."""
    return Pipeline(Settings())


@pytest.fixture
def llm_pipeline(kb_index, fake_openai) -> Callable[..., Pipeline]:
    """A pipeline whose doctor and pharmacist talk to the scripted server, one model each."""
    def make(**overrides) -> Pipeline:
        settings = dict(
            agent_backend="llm", llm_base_url=fake_openai.base_url, llm_api_key="test-key",
            doctor_model="doctor-model", pharmacist_model="pharmacist-model",
            llm_timeout=2.0, llm_max_retries=0,
        )
        settings.update(overrides)
        return Pipeline(Settings(**settings))
    return make
