"""`clinreason serve` as a real process: restart survival, graceful shutdown, Postgres."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from fake_openai import FakeOpenAI, Reply
from fastapi.testclient import TestClient

from clinreason.api.app import create_app
from clinreason.config import Settings
from clinreason.samples import load_sample


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, env: dict[str, str] | None = None, graceful: int = 30):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "clinreason.cli", "serve", "--port", str(self.port), "--graceful-timeout", str(graceful)],
            env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server did not start:\n{self.proc.stdout.read() if self.proc.stdout else ''}")
            time.sleep(0.2)

    def stop(self) -> bool:
        """SIGTERM, then True when the server shut down cleanly (uvicorn re-raises
        the signal after a graceful shutdown, so the exit status is -SIGTERM)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.clean_exit()

    def clean_exit(self) -> bool:
        code = self.proc.wait(timeout=60)
        log = self.proc.stdout.read() if self.proc.stdout else ""
        return code in (0, -signal.SIGTERM) and "Application shutdown complete" in log and "Finished server process" in log


def _key(role: str) -> str:
    r = subprocess.run([sys.executable, "-m", "clinreason.cli", "keys", "create", "--name", f"srv-{role}", "--role", role],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_assessment_awaiting_signoff_survives_a_restart(kb_index):
    submitter, prescriber = _key("submitter"), _key("prescriber")
    server = Server()
    try:
        r = httpx.post(f"{server.url}/v1/assessments", json=load_sample("dofetilide"), headers={"Authorization": f"Bearer {submitter}"}, timeout=30)
        assert r.status_code == 201 and r.json()["status"] == "awaiting_signoff"
        aid = r.json()["id"]
    finally:
        assert server.stop()
    server = Server()  # a new process: nothing in memory
    try:
        r = httpx.post(f"{server.url}/v1/assessments/{aid}/signoff", json={"action": "approve"},
                       headers={"Authorization": f"Bearer {prescriber}"}, timeout=30)
        assert r.status_code == 200 and r.json()["status"] == "final" and r.json()["plan"]["agent"] == "fosfomycin"
    finally:
        server.stop()


def test_graceful_shutdown_finishes_requests_in_flight(kb_index):
    key = _key("submitter")
    with FakeOpenAI(latency=1.5) as llm:
        llm.handler = lambda req: Reply.json({"urgency": "emergency_or_same_day",
                                              "reasons": [{"text": "Fever.", "citations": []}], "patient_advice": [], "avoid_agents": []})
        server = Server(env={"CLINREASON_AGENT_BACKEND": "llm", "CLINREASON_LLM_BASE_URL": llm.base_url,
                             "CLINREASON_LLM_MODEL": "slow-model", "CLINREASON_LLM_MAX_RETRIES": "0"})
        result: dict = {}

        def call() -> None:
            result["r"] = httpx.post(f"{server.url}/v1/assessments", json=load_sample("fever-on-lisinopril"),
                                     headers={"Authorization": f"Bearer {key}"}, timeout=120)

        t = threading.Thread(target=call)
        t.start()
        # A fresh server may load the embedding model for a referral search it has not seen
        # (about 10 s on a loaded machine), so allow for that before the LLM call arrives.
        deadline = time.monotonic() + 90
        while not llm.chat_requests and time.monotonic() < deadline:  # the request is now inside the pipeline
            time.sleep(0.05)
        assert llm.chat_requests
        server.proc.send_signal(signal.SIGTERM)
        t.join(timeout=90)
        assert server.clean_exit()
        r = result["r"]
        assert r.status_code == 201 and r.json()["decision"] == "refer_urgent"
        assert r.json()["audit"]["llm_fallbacks"] == []  # the slow LLM answer was waited for, not cut off
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{server.url}/healthz", timeout=2)


def test_postgres_configuration_over_rest(kb_index, pg_url):
    app = create_app(Settings(database_url=pg_url))
    with TestClient(app) as client:
        from clinreason.store import Store

        store = Store(Settings(database_url=pg_url))
        sub, pre = store.create_key("pg-sub", "submitter"), store.create_key("pg-pre", "prescriber")
        r = client.post("/v1/assessments", json=load_sample("warfarin"), headers={"Authorization": f"Bearer {sub}"})
        assert r.status_code == 201
        aid = r.json()["id"]
        s = client.post(f"/v1/assessments/{aid}/signoff", json={"action": "approve"}, headers={"Authorization": f"Bearer {pre}"})
        assert s.status_code == 200 and s.json()["status"] == "final"
        listed = client.get("/v1/assessments", params={"status": "final"}, headers={"Authorization": f"Bearer {sub}"}).json()
        assert listed["total"] == 1 and listed["items"][0]["id"] == aid
        assert [e["action"] for e in store.access_log(aid)] == ["create", "signoff"]
        assert client.get("/readyz").json()["checks"]["store"] == "ok"
