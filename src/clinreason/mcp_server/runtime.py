"""Where the tools get the pipeline, and who is calling.

Over HTTP the REST app's `AppState` is the runtime (one pipeline, one worker slot, shared with
/v1) and the caller is the request's API key. Over stdio the runtime is `LocalRuntime` and the
caller is the local user, like the CLI: no key, no site, and no sign-off tool.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import anyio.to_thread

from clinreason.config import Settings, get_settings

if TYPE_CHECKING:
    from clinreason.pipeline import Pipeline
    from clinreason.store import ApiKey


class Runtime(Protocol):
    @property
    def pipeline(self) -> Pipeline: ...

    async def in_worker_thread(self, fn: Callable[[], Any]) -> Any: ...


# The caller of one tool call: an API key (HTTP), or None for the local user (stdio).
Identify = Callable[[Any], "ApiKey | None"]


def local_user(ctx: Any) -> None:
    return None


class LocalRuntime:
    """The stdio server's pipeline: built on first use (or by `warm()` in the background at start)."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or get_settings()
        self._pipeline: Pipeline | None = None
        self._lock = threading.Lock()
        self._slots: anyio.CapacityLimiter | None = None

    @property
    def pipeline(self) -> Pipeline:
        with self._lock:
            if self._pipeline is None:
                from clinreason.pipeline import Pipeline

                self._pipeline = Pipeline(self.settings)
            return self._pipeline

    def warm(self) -> None:
        """Open the indexes and load the models now, so the first assessment does not wait for them."""
        self.pipeline.warm_up()

    async def in_worker_thread(self, fn: Callable[[], Any]) -> Any:
        # One offline run at a time: CPU-bound runs only fight over the GIL (as the API's AppState does).
        if self._slots is None:
            self._slots = anyio.CapacityLimiter(1 if self.settings.agent_backend == "rules" else 8)
        return await anyio.to_thread.run_sync(fn, limiter=self._slots)
