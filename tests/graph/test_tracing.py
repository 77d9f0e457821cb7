"""Weave: off unless configured; when configured, nodes are weave ops and init runs once."""

from __future__ import annotations

import sys

from clinreason.config import Settings
from clinreason.graph import tracing


def test_tracing_off_by_default_never_imports_weave():
    fn = lambda s: s  # noqa: E731
    assert tracing.traced(fn, "x", Settings()) is fn
    assert tracing.init_tracing(Settings()) is False


def test_configured_tracing_wraps_nodes_and_inits_once(monkeypatch):
    import weave

    calls = []
    monkeypatch.setattr(weave, "init", lambda project: calls.append(project))
    settings = Settings(weave_project="clinreason-test")
    assert tracing.init_tracing(settings) and tracing.init_tracing(settings)
    assert calls == ["clinreason-test"]

    def assess_node(state):
        return state

    from weave.trace.op import is_op

    op = tracing.traced(assess_node, "assess", settings)
    assert is_op(op) and not is_op(assess_node)
    assert op.name == "clinreason.assess"
    assert "weave" in sys.modules
