"""Scripted OpenAI-compatible HTTP server for tests (stdlib only on the server side).

    with FakeOpenAI() as server:
        server.script(Reply.json({"agent": "nitro"}), model="doctor-model")
        llm = ChatOpenAI(base_url=server.base_url, api_key="k", model="doctor-model")

Routing per call: the model's FIFO queue, then the shared queue (``model=None``),
then ``server.handler(request_json)``; otherwise HTTP 500 "script exhausted".
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import pytest

__all__ = ["FakeOpenAI", "RecordedRequest", "Reply", "Handler", "fake_openai"]


@dataclass(frozen=True)
class Reply:
    """One scripted answer. Build with the classmethods rather than directly."""

    payload: Any = None  # dict/list/pydantic -> JSON-encoded; str -> sent verbatim
    slot: Literal["auto", "content"] = "auto"  # auto: tool-call args when the request forces a tool
    tool_name: str | None = None  # default: the function named by tool_choice / first tool
    status: int = 200
    error: Any = None  # JSON body for non-200 replies
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (on top of server.latency)
    drop: bool = False  # close the socket without any response
    finish_reason: str | None = None  # override ("length", "content_filter", ...)

    @classmethod
    def json(cls, obj: Any, *, tool_name: str | None = None, delay: float = 0.0) -> Reply:
        """Structured output: tool call, response_format content or plain content, per request."""
        return cls(payload=obj, tool_name=tool_name, delay=delay)

    @classmethod
    def raw(cls, text: str, *, delay: float = 0.0) -> Reply:
        """Verbatim string in the structured slot (tool arguments or content), e.g. bad JSON."""
        return cls(payload=text, delay=delay)

    @classmethod
    def text(cls, text: str, *, delay: float = 0.0) -> Reply:
        """Plain assistant content, never a tool call."""
        return cls(payload=text, slot="content", delay=delay)

    @classmethod
    def http_error(
        cls, status: int, message: str = "scripted error", *, type: str = "server_error",
        headers: Mapping[str, str] | None = None, delay: float = 0.0,
    ) -> Reply:
        body = {"error": {"message": message, "type": type, "param": None, "code": None}}
        return cls(status=status, error=body, headers=dict(headers or {}), delay=delay)

    @classmethod
    def drop_connection(cls, *, delay: float = 0.0) -> Reply:
        return cls(drop=True, delay=delay)

    def after(self, delay: float) -> Reply:
        return replace(self, delay=delay)


Handler = Callable[[dict[str, Any]], "Reply | Any"]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON (None for GET / unparsable)
    at: float  # time.monotonic() when received

    @property
    def model(self) -> str | None:
        return self.body.get("model") if isinstance(self.body, dict) else None

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body.get("messages", []) if isinstance(self.body, dict) else []


def _coerce(item: Any) -> Reply:
    # Bare values are shorthand: str -> Reply.text, anything else -> Reply.json.
    if isinstance(item, Reply):
        return item
    return Reply.text(item) if isinstance(item, str) else Reply.json(item)


def _to_jsonable(obj: Any) -> Any:
    if hasattr(obj, "model_dump"):  # pydantic v2 without importing it
        return obj.model_dump(mode="json")
    return obj


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)  # ~4 chars/token, good enough for usage accounting


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, owner: FakeOpenAI) -> None:
        self.owner = owner
        self.closing = threading.Event()
        self._conn_lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._workers: list[threading.Thread] = []
        super().__init__(("127.0.0.1", 0), _RequestHandler)

    # Own thread/socket bookkeeping: daemon threads are not joined by server_close(),
    # and idle keep-alive connections would otherwise block their thread forever.
    def process_request(self, request: Any, client_address: Any) -> None:
        t = threading.Thread(target=self.process_request_thread, args=(request, client_address),
                             name="fake-openai-conn", daemon=True)
        with self._conn_lock:
            self._workers = [w for w in self._workers if w.is_alive()] + [t]
            self._conns.add(request)
        t.start()

    def shutdown_request(self, request: Any) -> None:
        with self._conn_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def abort_connections(self, join_timeout: float = 5.0) -> None:
        self.closing.set()  # wakes handlers sleeping on a scripted delay
        with self._conn_lock:
            conns, workers = list(self._conns), list(self._workers)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)  # unblocks readline() on idle keep-alive sockets
            except OSError:
                pass
        for w in workers:
            w.join(join_timeout)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # client went away (timeouts, drops); tests assert on the client side


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like api.openai.com
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid ~40 ms Nagle stall
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True  # unsupported framing: can't resync the stream
        return self.rfile.read(length) if length else b""

    def _send_json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        raw = self._read_body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = self.path.split("?", 1)[0].rstrip("/")
        owner = self.server.owner
        owner._record(RecordedRequest(self.command, path, {k.lower(): v for k, v in self.headers.items()},
                                      body, time.monotonic()))

        if self.command == "GET" and path in ("/v1/models", "/models"):
            return self._send_json(200, owner._models_payload())
        if self.command != "POST" or path not in ("/v1/chat/completions", "/chat/completions"):
            return self._send_json(404, _err(f"fake_openai: no route {self.command} {path}", "not_found"))
        if not isinstance(body, dict):
            return self._send_json(400, _err("fake_openai: request body is not a JSON object"))
        if body.get("stream"):
            return self._send_json(400, _err("fake_openai: stream=true is not supported; "
                                             "use non-streaming calls (streaming=False)"))

        reply = owner._next_reply(body)
        if self.server.closing.wait(owner.latency + reply.delay):
            reply = Reply(drop=True)  # server is shutting down: don't answer
        if reply.drop:
            self.close_connection = True  # socketserver closes the socket with nothing written
            return None
        if reply.status != 200:
            return self._send_json(reply.status, reply.error if reply.error is not None else _err("error"),
                                   reply.headers)
        return self._send_json(200, _completion(body, reply), reply.headers)

    def do_POST(self) -> None:
        try:
            self._handle()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # client timed out / hung up while we slept

    do_GET = do_POST


def _err(message: str, type: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": None, "code": None}}


def _forced_tool(req: dict[str, Any]) -> str | None:
    """Function name the client wants called, if it sent tools + tool_choice."""
    tools, choice = req.get("tools"), req.get("tool_choice")
    if not tools or choice in (None, "none"):
        return None
    if isinstance(choice, dict):  # {"type": "function", "function": {"name": ...}}
        return choice.get("function", {}).get("name")
    return tools[0].get("function", {}).get("name")  # "auto" / "required": pick the first tool


def _completion(req: dict[str, Any], reply: Reply) -> dict[str, Any]:
    payload = _to_jsonable(reply.payload)
    text = payload if isinstance(payload, str) else json.dumps(payload)
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    finish = "stop"
    tool = (reply.tool_name or _forced_tool(req)) if reply.slot == "auto" else None
    if tool:  # with_structured_output(method="function_calling") -> answer as a tool call
        message["content"] = None
        message["tool_calls"] = [{"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                                  "function": {"name": tool, "arguments": text}}]
        finish = "tool_calls"
    prompt = _tokens(json.dumps(req.get("messages", [])))
    completion = _tokens(text)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": req.get("model", "unknown"),
        "system_fingerprint": "fp_fake_openai",
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": reply.finish_reason or finish}],
        "usage": {
            "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
        },
    }


class FakeOpenAI:
    """OpenAI-compatible server on 127.0.0.1:<ephemeral> running in a background thread."""

    def __init__(self, *, latency: float = 0.0, handler: Handler | None = None,
                 models: list[str] | None = None) -> None:
        self.latency = latency  # added to every chat completion (benchmarks)
        self.handler = handler  # fallback when no scripted reply is queued
        self._models = list(models or [])
        self._lock = threading.Lock()
        self._queues: defaultdict[str | None, deque[Reply]] = defaultdict(deque)
        self._requests: list[RecordedRequest] = []
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> FakeOpenAI:
        assert self._httpd is None, "already started"
        self._httpd = _Server(self)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01},
                                        name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()  # stop accepting; returns once serve_forever exits
        self._httpd.abort_connections()  # then kill keep-alive/sleeping handlers and join them
        self._httpd.server_close()
        assert self._thread is not None
        self._thread.join(5)
        self._httpd = self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- scripting ------------------------------------------------------------
    def script(self, *replies: Reply | Any, model: str | None = None) -> FakeOpenAI:
        """Queue replies for `model` (None = shared queue used by any model without its own)."""
        with self._lock:
            self._queues[model].extend(_coerce(r) for r in replies)
            if model and model not in self._models:
                self._models.append(model)
        return self

    def pending(self, model: str | None = None) -> int:
        with self._lock:
            return len(self._queues.get(model, ()))

    def reset(self) -> None:
        """Drop queued replies, recorded requests, handler and latency."""
        with self._lock:
            self._queues.clear()
            self._requests.clear()
            self.handler = None
            self.latency = 0.0

    def _next_reply(self, req: dict[str, Any]) -> Reply:
        model = req.get("model")
        with self._lock:
            for key in (model, None):
                q = self._queues.get(key)
                if q:
                    return q.popleft()
            handler = self.handler
        if handler is not None:
            return _coerce(handler(req))  # called outside the lock: handlers may be slow
        return Reply.http_error(500, f"fake_openai: script exhausted for model {model!r} "
                                     "(no queued reply and no handler)", type="fake_openai_script_exhausted")

    # -- inspection -----------------------------------------------------------
    def _record(self, r: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(r)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Snapshot of all recorded requests, in arrival order."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, model: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.model == model]

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def _models_payload(self) -> dict[str, Any]:
        with self._lock:
            ids = list(self._models) or ["fake-model"]
        return {"object": "list",
                "data": [{"id": m, "object": "model", "created": 0, "owned_by": "fake-openai"} for m in ids]}


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A started FakeOpenAI, stopped after the test."""
    with FakeOpenAI() as server:
        yield server
