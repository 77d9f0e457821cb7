"""The graph as LangGraph Server / Studio loads it (langgraph.json: `make_graph`).

The server calls `make_graph(config)` for each run (and for schema and state reads) with the
run's config, and attaches its own checkpointer and store to what it returns, so the graph is
compiled here without one. Agents are built from the process settings (CLINREASON_*) with the
run's `configurable` agent_backend and max_rounds (graph/configuration.py); protocol and profile
are read by intake. Compiled graphs are cached per (backend, round cap): the server copies the
graph before attaching its checkpointer, so a cached one is never mutated."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from clinreason.agents import Doctor, Pharmacist, make_agents
from clinreason.config import Settings, get_settings
from clinreason.graph.build import build_graph, recursion_limit
from clinreason.graph.configuration import Configuration
from clinreason.graph.tracing import init_tracing


def make_graph(config: dict[str, Any] | None = None) -> Any:
    conf = Configuration.from_runnable_config(config)
    return _compiled(conf.agent_backend, conf.max_rounds)


@lru_cache(maxsize=32)
def _compiled(agent_backend: str | None, max_rounds: int | None) -> Any:
    settings = Configuration(agent_backend=agent_backend, max_rounds=max_rounds).settings(get_settings())
    init_tracing(settings)
    return server_graph(settings, *make_agents(settings))


def server_graph(settings: Settings, doctor: Doctor, pharmacist: Pharmacist) -> Any:
    """Compiled without a checkpointer, with the round cap's step budget as the graph's default
    recursion limit: the bound clinreason's Pipeline runs with (langgraph-api's own default is
    10011 steps); a run's explicit recursion_limit still overrides it."""
    return build_graph(settings, doctor, pharmacist, checkpointer=None).with_config(recursion_limit=recursion_limit(settings.max_rounds))
