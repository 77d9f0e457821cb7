"""Rate limits per key: in memory by default, Redis when REDIS_URL is set."""

from __future__ import annotations

import os
import uuid

import pytest

REDIS = os.environ.get("CLINREASON_TEST_REDIS", "redis://127.0.0.1:6379/15")


def _exhaust(api, limit):
    statuses = [api.client.get("/v1/assessments", headers=api.headers("submitter")).status_code for _ in range(limit + 1)]
    return statuses


def test_memory_limit_gives_429_with_retry_after(api_factory):
    api = api_factory(rate_limit=3, rate_window=60)
    statuses = _exhaust(api, 3)
    assert statuses == [200, 200, 200, 429]
    r = api.client.get("/v1/assessments", headers=api.headers("submitter"))
    assert r.status_code == 429 and r.headers["content-type"] == "application/problem+json"
    assert 1 <= int(r.headers["retry-after"]) <= 61
    # another key has its own budget
    assert api.client.get("/v1/assessments", headers=api.headers("admin")).status_code == 200


@pytest.fixture
def redis_url():
    import redis  # declared in the api extra: a missing package is a failure, not a skip
    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=2).ping()
    except redis.exceptions.ConnectionError as exc:
        if os.environ.get("CI"):
            raise  # CI machines run Redis: a missing server is a failure there
        pytest.skip(f"Redis not reachable at {REDIS}: {exc}")
    return REDIS


def test_redis_limit_is_shared_across_app_instances(api_factory, redis_url):
    first = api_factory(redis_url=redis_url, rate_limit=4, rate_window=60)
    second = api_factory(redis_url=redis_url, rate_limit=4, rate_window=60)
    key = first.store.create_key(f"shared-{uuid.uuid4().hex[:6]}", "submitter", "pharmacy-a")
    h = {"Authorization": f"Bearer {key}"}
    codes = [first.client.get("/v1/assessments", headers=h).status_code for _ in range(2)]
    codes += [second.client.get("/v1/assessments", headers=h).status_code for _ in range(3)]
    assert codes == [200, 200, 200, 200, 429]
    ready = second.client.get("/readyz").json()
    assert ready["checks"]["redis"] == "ok"


def test_readyz_reports_redis_down(api_factory):
    api = api_factory(redis_url="redis://127.0.0.1:1/0")
    r = api.client.get("/readyz")
    assert r.status_code == 503 and r.json()["checks"]["redis"].startswith("error")
