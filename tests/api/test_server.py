"""`clinreason serve` as a real process: restart survival, graceful shutdown, Postgres."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import ClassVar

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


# Generous limits for a shared, loaded 2-core machine: a fresh server opens the index and warms up
# the pipeline (loading the embedding model) before /readyz answers 200.
STARTUP_SECONDS = 300
STOP_SECONDS = 120  # SIGTERM to exit: the graceful drain and the shutdown; past it the process group is killed
_PARENT_DEATH = (  # run `clinreason serve` so it gets SIGTERM if the test process dies without stopping it
    "import ctypes, os, signal, sys; ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM); "  # PR_SET_PDEATHSIG
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)


class Server:
    """`clinreason serve` as a subprocess, in its own process group, logging to a file.

    Every server started is stopped whatever happens: by the test (`stop()`, or
    `with Server() as s:`), else by the autouse fixtures (`Server.stop_all()` after
    each test, here and in tests/api/conftest.py). A server that ignores SIGTERM for
    STOP_SECONDS is killed with its process group. On Linux it also gets SIGTERM if
    the test process dies (PR_SET_PDEATHSIG: the thread that started it must outlive it).
    """

    live: ClassVar[set[Server]] = set()

    def __init__(self, env: dict[str, str] | None = None, graceful: int = 30, args: list[str] | None = None,
                 startup_timeout: float = STARTUP_SECONDS):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = tempfile.NamedTemporaryFile("w+", prefix=f"clinreason-serve-{self.port}-", suffix=".log", delete=False)  # noqa: SIM115
        self._exit: bool | None = None
        command = [sys.executable, "-m", "clinreason.cli", "serve", "--port", str(self.port), "--graceful-timeout", str(graceful), *(args or [])]
        if sys.platform == "linux":
            command = [sys.executable, "-c", _PARENT_DEATH, *command[1:]]
        self.proc = subprocess.Popen(command, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        Server.live.add(self)
        deadline = time.monotonic() + startup_timeout
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server did not start in {startup_timeout:.0f} s:\n{self.log}")
            time.sleep(0.2)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def log(self) -> str:
        """Everything the server has written (stdout and stderr)."""
        with open(self._log.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self) -> bool:
        """SIGTERM, then True when the server shut down cleanly (uvicorn re-raises
        the signal after a graceful shutdown, so the exit status is -SIGTERM).
        Safe to call again: the first answer is kept."""
        if self._exit is None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.clean_exit()

    def clean_exit(self, timeout: float = STOP_SECONDS) -> bool:
        """Wait for the exit (after a SIGTERM sent here or by the test); kill the process group
        past `timeout`. True when the exit was clean."""
        if self._exit is not None:
            return self._exit
        try:
            exited = _wait_unreaped(self.proc.pid, timeout)
            # The leader has exited (or is killed now) but is not reaped yet, so its group id is
            # still ours: kill whatever is left in the group (workers of a crashed master).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            code = self.proc.wait(timeout=60)
        finally:
            Server.live.discard(self)
            self._log.close()
        log = self.log
        self._exit = exited and code in (0, -signal.SIGTERM) and "Application shutdown complete" in log and "Finished server process" in log
        return self._exit

    @classmethod
    def stop_all(cls, keep: set[Server] | frozenset[Server] = frozenset()) -> list[str]:
        """Stop every server still running but those in `keep` (started by a fixture of a wider
        scope, which stops them itself); the URLs of those that were."""
        left = sorted(cls.live - set(keep), key=lambda s: s.port)
        for server in left:
            server.stop()
        return [s.url for s in left]


def _wait_unreaped(pid: int, timeout: float) -> bool:
    """Wait for `pid` to exit without reaping it; False when it had not exited in `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
        except ChildProcessError:  # already reaped
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(autouse=True)
def _no_server_left_running():
    running = set(Server.live)  # e.g. a module-scoped fixture's server
    yield
    Server.stop_all(keep=running)


def _key(role: str) -> str:
    r = subprocess.run([sys.executable, "-m", "clinreason.cli", "keys", "create", "--name", f"srv-{role}", "--role", role, "--site", "pharmacy-a"],
                       capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_assessment_awaiting_signoff_survives_a_restart(kb_index):
    submitter, prescriber = _key("submitter"), _key("prescriber")
    with Server() as server:
        r = httpx.post(f"{server.url}/v1/assessments", json=load_sample("dofetilide"), headers={"Authorization": f"Bearer {submitter}"}, timeout=300)
        assert r.status_code == 201 and r.json()["status"] == "awaiting_signoff"
        aid = r.json()["id"]
        assert server.stop(), server.log[-3000:]
    with Server() as server:  # a new process: nothing in memory
        r = httpx.post(f"{server.url}/v1/assessments/{aid}/signoff", json={"action": "approve"},
                       headers={"Authorization": f"Bearer {prescriber}"}, timeout=300)
        assert r.status_code == 200 and r.json()["status"] == "final" and r.json()["plan"]["option"] == "fosfomycin"


def test_assessment_awaiting_signoff_survives_kill_9(kb_index):
    # No graceful shutdown: the run's one checkpoint write (at the sign-off interrupt) was on disk
    # before the 201 went out, so a SIGKILL right after it loses nothing.
    submitter, prescriber = _key("submitter"), _key("prescriber")
    with Server() as server:
        r = httpx.post(f"{server.url}/v1/assessments", json=load_sample("warfarin"), headers={"Authorization": f"Bearer {submitter}"}, timeout=300)
        assert r.status_code == 201 and r.json()["status"] == "awaiting_signoff" and r.json()["plan"]["option"] == "trimethoprim"
        aid = r.json()["id"]
        os.killpg(server.proc.pid, signal.SIGKILL)
        assert server.clean_exit() is False and server.proc.returncode == -signal.SIGKILL
    with Server() as server:
        r = httpx.post(f"{server.url}/v1/assessments/{aid}/signoff", json={"action": "approve", "comment": "INR plan reviewed"},
                       headers={"Authorization": f"Bearer {prescriber}"}, timeout=300)
        assert r.status_code == 200 and r.json()["status"] == "final" and r.json()["plan"]["option"] == "trimethoprim"
        assert r.json()["signoff"]["action"] == "approve"


def test_graceful_shutdown_finishes_requests_in_flight(kb_index):
    key = _key("submitter")
    with FakeOpenAI(latency=1.5) as llm:
        llm.handler = lambda req: Reply.json({"urgency": "emergency_or_same_day",
                                              "reasons": [{"text": "Fever.", "citations": []}], "patient_advice": [], "avoid_agents": []})
        # graceful=300: the drain must never be what cuts the request off on a slow machine.
        with Server(env={"CLINREASON_AGENT_BACKEND": "llm", "CLINREASON_LLM_BASE_URL": llm.base_url,
                         "CLINREASON_LLM_MODEL": "slow-model", "CLINREASON_LLM_MAX_RETRIES": "0",
                         "CLINREASON_LLM_TIMEOUT": "120", "CLINREASON_ASSESSMENT_TIMEOUT": "600"}, graceful=300) as server:
            result: dict = {}

            def call() -> None:
                try:
                    result["r"] = httpx.post(f"{server.url}/v1/assessments", json=load_sample("fever-on-lisinopril"),
                                             headers={"Authorization": f"Bearer {key}"}, timeout=600)
                except Exception as exc:  # reported by the assertions below, not lost in the thread
                    result["error"] = exc

            t = threading.Thread(target=call, daemon=True)
            t.start()
            # Wait until the request is inside the pipeline (its first LLM call has arrived); on a
            # loaded machine the retrieval before it can take a while.
            deadline = time.monotonic() + 300
            while not llm.chat_requests and t.is_alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert llm.chat_requests, f"no LLM call arrived: {result.get('error') or result.get('r')}\n{server.log[-3000:]}"
            server.proc.send_signal(signal.SIGTERM)
            t.join(timeout=600)
            assert not t.is_alive(), f"the request in flight did not finish\n{server.log[-3000:]}"
            assert server.clean_exit(), server.log[-3000:]
        assert "r" in result, f"the request failed: {result.get('error')!r}\n{server.log[-3000:]}"
        r = result["r"]
        assert r.status_code == 201 and r.json()["decision"] == "refer_urgent", r.text[:500]
        assert r.json()["audit"]["llm_fallbacks"] == []  # the slow LLM answer was waited for, not cut off
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{server.url}/healthz", timeout=5)


def test_postgres_configuration_over_rest(kb_index, pg_url):
    app = create_app(Settings(database_url=pg_url))
    with TestClient(app) as client:
        from clinreason.store import Store

        store = Store(Settings(database_url=pg_url))
        sub, pre = store.create_key("pg-sub", "submitter", "pharmacy-a"), store.create_key("pg-pre", "prescriber", "pharmacy-a")
        r = client.post("/v1/assessments", json=load_sample("warfarin"), headers={"Authorization": f"Bearer {sub}"})
        assert r.status_code == 201
        aid = r.json()["id"]
        s = client.post(f"/v1/assessments/{aid}/signoff", json={"action": "approve"}, headers={"Authorization": f"Bearer {pre}"})
        assert s.status_code == 200 and s.json()["status"] == "final"
        listed = client.get("/v1/assessments", params={"status": "final"}, headers={"Authorization": f"Bearer {sub}"}).json()
        assert listed["total"] == 1 and listed["items"][0]["id"] == aid
        # The list read that returned it is an access to it too.
        assert [e["action"] for e in store.access_log(aid)] == ["create", "signoff", "list"]
        assert client.get("/readyz").json()["checks"]["store"] == "ok"
