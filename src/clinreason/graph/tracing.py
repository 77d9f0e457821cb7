"""Weave tracing, only when configured.

Importing weave costs about a second and `weave.init` may prompt for a key,
so nothing touches weave unless `CLINREASON_WEAVE_PROJECT` is set; then every
graph node is wrapped as a `weave.op` and `weave.init` runs once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from clinreason.config import Settings

F = TypeVar("F", bound=Callable)
_initialised: set[str] = set()


def init_tracing(settings: Settings) -> bool:
    if not settings.weave_project:
        return False
    if settings.weave_project not in _initialised:
        import weave

        weave.init(settings.weave_project)
        _initialised.add(settings.weave_project)
    return True


def traced(fn: F, name: str, settings: Settings) -> F:
    if not settings.weave_project:
        return fn
    import weave

    return weave.op(name=f"clinreason.{name}")(fn)  # type: ignore[return-value]
