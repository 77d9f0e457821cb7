"""One thread pool for every graph run in the process, instead of a new pool per run.

LangGraph's sync loop enters `BackgroundExecutor(config)` for each run, which opens a fresh
`ContextThreadPoolExecutor` through `get_executor_for_config` and shuts it down at the end; the
checkpoint save it submits then starts a new OS thread every run (about a millisecond of CPU, a
tenth of a warm offline assessment). LangGraph has no setting for this, so `use_shared_executor`
points the name its executor module looks up at a context manager that yields one long-lived
pool. The semantics LangGraph relies on are unchanged: `BackgroundExecutor.__exit__` still waits
for its own tasks (the checkpoint write of a sign-off interrupt is on disk before the run
returns) and re-raises their errors; only the pool's shutdown is skipped.

Every task runs through a FIFO queue and this graph runs one task per superstep inline, so a
bounded pool cannot deadlock: a checkpoint save waits only on the save submitted before it.
If a LangGraph release moves the name, nothing is patched and runs keep their own pools
(`shared_executor_active()` says which; a test checks it is on).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_lock = threading.Lock()
_pool: Any = None
_POOL_THREADS = 8  # checkpoint saves of concurrent runs (API workers run assessments on threads)


@contextmanager
def _shared(config: Any) -> Iterator[Any]:
    global _pool
    with _lock:
        if _pool is None:
            from langchain_core.runnables.config import (
                ContextThreadPoolExecutor,  # copies contextvars, as LangGraph's own
            )

            _pool = ContextThreadPoolExecutor(max_workers=_POOL_THREADS, thread_name_prefix="clinreason-graph")
    yield _pool


def use_shared_executor() -> bool:
    """Make LangGraph's sync runs share one pool; False when this LangGraph has no such seam."""
    from langgraph.pregel import _executor

    if not hasattr(_executor, "get_executor_for_config"):
        return False
    _executor.get_executor_for_config = _shared
    return True


def shared_executor_active() -> bool:
    from langgraph.pregel import _executor

    return getattr(_executor, "get_executor_for_config", None) is _shared
