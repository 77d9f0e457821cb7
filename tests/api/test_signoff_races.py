"""Exactly one sign-off wins when prescribers decide at the same moment.

Each race: one assessment awaiting sign-off, then an approve and a reject released
together (a barrier). Exactly one gets 200; the other gets 409 naming the winner's
action; the stored result carries the winner's action; the graph resumed once (the
store's version is 2: claimed once, stored once). Three settings, 50 races each:
threads in one process, one server with two worker processes (SQLite), and two
servers on one Postgres.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from test_server import Server

from clinreason.pipeline import NotAwaitingSignoff
from clinreason.samples import load_sample
from clinreason.store import Store

RACES = 50
ACTIONS = ("approve", "reject")


def _race(calls: list[Callable[[], tuple[int, dict]]]) -> list[tuple[int, dict]]:
    barrier = threading.Barrier(len(calls))

    def go(call: Callable[[], tuple[int, dict]]) -> tuple[int, dict]:
        barrier.wait(timeout=120)
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return [f.result(timeout=300) for f in [pool.submit(go, c) for c in calls]]


def _check_one_winner(store: Store, aid: str, outcomes: list[tuple[int, dict]]) -> str:
    """Assert the race had exactly one winner and return its action."""
    statuses = sorted(code for code, _ in outcomes)
    assert statuses == [200, 409], (aid, outcomes)
    winner_action = next(body["signoff"]["action"] for code, body in outcomes if code == 200)
    loser = next(body for code, body in outcomes if code == 409)
    assert winner_action in loser["errors"][0]["message"], loser  # the loser is told who won, and how
    stored = store.get(aid)
    assert stored["status"] == "final" and stored["signoff"]["action"] == winner_action
    assert store.status_of(aid) == ("final", 2)  # inserted (0), claimed (1), stored once (2): one resume
    assert store.signoff_of(aid).action == winner_action and store.signoff_of(aid).applied_at
    return winner_action


def test_threads_racing_the_pipeline_give_one_winner(offline_pipeline):
    """The store's claim is what decides: two threads call Pipeline.signoff directly (no API limiter)."""
    patient = load_sample("uncomplicated")
    wins = {a: 0 for a in ACTIONS}
    for _ in range(RACES):
        aid = offline_pipeline.run(patient).id

        def call(action: str) -> Callable[[], tuple[int, dict]]:
            def run() -> tuple[int, dict]:
                try:
                    return 200, offline_pipeline.signoff(aid, action, f"dr-{action}").model_dump(mode="json")
                except NotAwaitingSignoff as exc:
                    assert exc.winner is not None and exc.winner.action != action
                    return 409, {"errors": [{"message": str(exc)}]}
            return run

        wins[_check_one_winner(offline_pipeline.store, aid, _race([call(a) for a in ACTIONS]))] += 1
    assert sum(wins.values()) == RACES


def test_threads_racing_one_app_give_one_winner(api):
    patient = load_sample("uncomplicated")
    for _ in range(RACES):
        aid = api.post_patient(patient).json()["id"]

        def call(action: str) -> Callable[[], tuple[int, dict]]:
            def run() -> tuple[int, dict]:
                r = api.client.post(f"/v1/assessments/{aid}/signoff", json={"action": action}, headers=api.headers("prescriber"))
                return r.status_code, r.json()
            return run

        _check_one_winner(api.store, aid, _race([call(a) for a in ACTIONS]))


def _http_races(urls: tuple[str, str], submitter: str, prescriber: str, store: Store) -> dict[str, int]:
    wins = {a: 0 for a in ACTIONS}
    patient = load_sample("uncomplicated")
    with httpx.Client(timeout=120) as client:
        for i in range(RACES):
            r = client.post(f"{urls[i % 2]}/v1/assessments", json=patient, headers={"Authorization": f"Bearer {submitter}"})
            assert r.status_code == 201, r.text
            aid = r.json()["id"]

            def call(url: str, action: str) -> Callable[[], tuple[int, dict]]:
                def run() -> tuple[int, dict]:
                    s = client.post(f"{url}/v1/assessments/{aid}/signoff", json={"action": action},
                                    headers={"Authorization": f"Bearer {prescriber}"})
                    return s.status_code, s.json()
                return run

            # Alternate which server (or worker connection) gets which action.
            pair = [call(urls[0], ACTIONS[i % 2]), call(urls[1], ACTIONS[(i + 1) % 2])]
            wins[_check_one_winner(store, aid, _race(pair))] += 1
    return wins


RACE_ENV = {"CLINREASON_RATE_LIMIT": "100000"}


def test_two_worker_processes_give_one_winner(kb_index, tmp_path):
    env = {**RACE_ENV, "CLINREASON_DATA_DIR": os.environ["CLINREASON_DATA_DIR"]}
    store = Store(_settings())
    submitter = store.create_key("race-sub", "submitter", "race-site")
    prescriber = store.create_key("race-pre", "prescriber", "race-site")
    server = Server(env=env, args=["--workers", "2"])
    try:
        # Two connections to one port: the kernel spreads them over both workers.
        wins = _http_races((server.url, server.url), submitter, prescriber, store)
    finally:
        server.stop()
    assert sum(wins.values()) == RACES


def test_two_servers_on_one_postgres_give_one_winner(kb_index, pg_url):
    env = {**RACE_ENV, "CLINREASON_DATABASE_URL": pg_url}
    store = Store(_settings(database_url=pg_url))
    submitter = store.create_key("race-sub", "submitter", "race-site")
    prescriber = store.create_key("race-pre", "prescriber", "race-site")
    first = Server(env=env)
    try:
        second = Server(env=env)
        try:
            wins = _http_races((first.url, second.url), submitter, prescriber, store)
        finally:
            second.stop()
    finally:
        first.stop()
    assert sum(wins.values()) == RACES


def _settings(**overrides):
    from clinreason.config import Settings

    return Settings(**overrides)


def test_a_failed_resume_releases_the_claim(offline_pipeline, monkeypatch):
    """If the graph cannot resume, the claim is released: the assessment can still be signed off."""
    aid = offline_pipeline.run(load_sample("uncomplicated")).id
    real = offline_pipeline._drive

    def broken(*args, **kwargs):
        raise RuntimeError("checkpointer unavailable")

    monkeypatch.setattr(offline_pipeline, "_drive", broken)
    with pytest.raises(RuntimeError):
        offline_pipeline.signoff(aid, "approve", "dr-a")
    assert offline_pipeline.store.status_of(aid)[0] == "awaiting_signoff" and offline_pipeline.store.signoff_of(aid) is None
    monkeypatch.setattr(offline_pipeline, "_drive", real)
    assert offline_pipeline.signoff(aid, "reject", "dr-b").signoff.action == "reject"
