"""Fixed-window rate limits per API key: Redis when configured, memory otherwise."""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol


class RateLimiter(Protocol):
    def hit(self, key: str) -> int | None:
        """Count one request; None when allowed, else seconds until the window resets."""
        ...

    def ping(self) -> None: ...


def _window(window: int) -> tuple[float, int]:
    now = time.time()
    return now, int(now // window)


def _verdict(count: int, limit: int, now: float, slot: int, window: int) -> int | None:
    """None while the count is within the limit, else seconds until the window resets."""
    return None if count <= limit else max(1, int((slot + 1) * window - now) + 1)


def make_rate_limiter(redis_url: str | None, limit: int, window: int) -> RateLimiter:
    return RedisRateLimiter(redis_url, limit, window) if redis_url else MemoryRateLimiter(limit, window)


class MemoryRateLimiter:
    def __init__(self, limit: int, window: int):
        self.limit, self.window = limit, window
        self._counts: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> int | None:
        now, slot = _window(self.window)
        with self._lock:
            if len(self._counts) > 10_000:  # drop finished windows
                self._counts = {k: v for k, v in self._counts.items() if k[1] == slot}
            n = self._counts[(key, slot)] = self._counts.get((key, slot), 0) + 1
        return _verdict(n, self.limit, now, slot, self.window)

    def ping(self) -> None:
        return None


class RedisRateLimiter:
    """Shared across workers and hosts: INCR a per-window key that expires with the window."""

    def __init__(self, url: str, limit: int, window: int):
        import redis

        self.client: Any = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.limit, self.window = limit, window

    def hit(self, key: str) -> int | None:
        now, slot = _window(self.window)
        name = f"clinreason:rl:{key}:{slot}"
        pipe = self.client.pipeline()
        pipe.incr(name)
        pipe.expire(name, self.window + 1)
        n, _ = pipe.execute()
        return _verdict(n, self.limit, now, slot, self.window)

    def ping(self) -> None:
        self.client.ping()
