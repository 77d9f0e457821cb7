"""The layers of DESIGN.md, checked on the import statements: each layer imports only from those
below it (core < formulary < protocols < knowledge < agents < graph < service < interfaces).
The service layer's rendering/ is checked too: it must not reach up into the API or the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import clinreason

SRC = Path(clinreason.__file__).parent
CORE = {"config", "errors", "hygiene"}
# layer -> the clinreason modules it may import (besides itself and the core)
ALLOWED = {
    "formulary": set(),
    "protocols": {"formulary"},
    "knowledge": {"formulary", "protocols"},
    "agents": {"formulary", "protocols", "knowledge"},
    "graph": {"formulary", "protocols", "knowledge", "agents"},
    # service: the output formats of a stored assessment (below the API and CLI that serve them)
    "rendering": {"formulary", "protocols", "knowledge", "agents", "graph", "assessment", "pipeline", "store"},
    # interfaces that the API and the CLI use: FHIR mapping, and the CDS Hooks service over it
    "fhir": {"formulary", "protocols", "knowledge", "agents", "graph", "assessment", "pipeline", "store", "rendering", "samples"},
    "cds_hooks": {"formulary", "protocols", "knowledge", "agents", "graph", "assessment", "pipeline", "store", "rendering", "samples",
                  "fhir", "api"},
    "mcp_server": {"formulary", "protocols", "knowledge", "agents", "graph", "assessment", "pipeline", "store", "rendering", "samples",
                   "fhir", "api"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("clinreason."):
            out.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[1] for a in node.names if a.name.startswith("clinreason."))
    return out


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_from_below(layer: str) -> None:
    bad = {}
    for path in sorted((SRC / layer).rglob("*.py")):
        stray = _imports(path) - ALLOWED[layer] - CORE - {layer}
        if stray:
            bad[str(path.relative_to(SRC))] = sorted(stray)
    assert not bad, f"imports from a higher layer: {bad}"


def test_core_imports_nothing_above_it() -> None:
    for name in CORE:
        assert _imports(SRC / f"{name}.py") <= CORE, name
