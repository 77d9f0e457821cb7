"""clinreason: graph-based, multi-agent clinical reasoning for pharmacist prescribing protocols.

The public names load on first use (PEP 562), so importing a submodule (`clinreason.errors`,
`clinreason.cli`) does not load every protocol and pydantic model first.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clinreason.assessment import Assessment, assess
    from clinreason.errors import FieldError, InvalidPatient
    from clinreason.protocols.uti_cystitis import Decision, Patient

# Public name -> the module that defines it. `Patient` and `Decision` are the default protocol's
# input model and decision values, as before protocols were plug-ins (kept for existing callers).
_EXPORTS = {
    "Assessment": "clinreason.assessment",
    "assess": "clinreason.assessment",
    "FieldError": "clinreason.errors",
    "InvalidPatient": "clinreason.errors",
    "Decision": "clinreason.protocols.uti_cystitis",
    "Patient": "clinreason.protocols.uti_cystitis",
}

__all__ = ["Assessment", "Decision", "FieldError", "InvalidPatient", "Patient", "assess"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'clinreason' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
