"""Shared fixtures. Tracing and telemetry stay off and nothing reaches the network."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

import pytest

os.environ.setdefault("WEAVE_DISABLED", "true")
os.environ.setdefault("WANDB_ERROR_REPORTING", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# One throwaway data dir per test session (index, caches, stores); CLI
# subprocesses inherit it, so the index is embedded once per run.
os.environ["CLINREASON_DATA_DIR"] = tempfile.mkdtemp(prefix="clinreason-test-")

from fake_openai import fake_openai  # noqa: E402,F401  (fixture re-export)

from patients import make_patient  # noqa: E402


@pytest.fixture
def patient_factory() -> Callable[..., dict[str, Any]]:
    return make_patient


@pytest.fixture(scope="session")
def kb_index():
    """The real knowledge-base index (MiniLM + Chroma + BM25), built once per session."""
    from clinreason.knowledge.retrieval import get_index

    return get_index()
