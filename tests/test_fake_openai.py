"""Real-HTTP tests of the FakeOpenAI fixture through langchain-openai / openai."""

from __future__ import annotations

import http.client
import json
import threading
import time

import openai
import pytest
from fake_openai import FakeOpenAI, Reply
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, ValidationError


class Dx(BaseModel):
    agent: str
    dose_mg: int


def llm(server: FakeOpenAI, model: str = "doctor-model", timeout: float = 5.0) -> ChatOpenAI:
    return ChatOpenAI(base_url=server.base_url, api_key="test-key", model=model,
                      timeout=timeout, max_retries=0)


def test_structured_output_json_schema(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Reply.json({"agent": "nitroglycerin", "dose_mg": 5}), model="doctor-model")
    out = llm(fake_openai).with_structured_output(Dx, method="json_schema").invoke("chest pain")
    assert out == Dx(agent="nitroglycerin", dose_mg=5)
    rf = fake_openai.requests[0].body["response_format"]
    assert rf["type"] == "json_schema" and rf["json_schema"]["name"] == "Dx"
    assert "tools" not in fake_openai.requests[0].body


def test_structured_output_function_calling(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Reply.json(Dx(agent="aspirin", dose_mg=81)))  # pydantic payloads work too
    out = llm(fake_openai).with_structured_output(Dx, method="function_calling").invoke("chest pain")
    assert out == Dx(agent="aspirin", dose_mg=81)
    body = fake_openai.requests[0].body
    assert body["tool_choice"] == {"type": "function", "function": {"name": "Dx"}}
    assert "response_format" not in body


def test_default_structured_output_method_round_trips(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Reply.json({"agent": "heparin", "dose_mg": 60}))
    assert llm(fake_openai).with_structured_output(Dx).invoke("x").agent == "heparin"


def test_plain_text_reply(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("Likely stable angina.")
    msg = llm(fake_openai).invoke("x")
    assert msg.content == "Likely stable angina."
    assert msg.usage_metadata and msg.usage_metadata["total_tokens"] > 0
    assert msg.response_metadata["model_name"] == "doctor-model"


def test_per_model_routing(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Reply.json({"agent": "nitro", "dose_mg": 1}),
                       Reply.json({"agent": "morphine", "dose_mg": 2}), model="doctor-model")
    fake_openai.script(Reply.json({"agent": "ok", "dose_mg": 0}), model="pharmacist-model")
    doctor = llm(fake_openai, "doctor-model").with_structured_output(Dx)
    pharmacist = llm(fake_openai, "pharmacist-model").with_structured_output(Dx, method="function_calling")
    assert doctor.invoke("a").agent == "nitro"
    assert pharmacist.invoke("b").agent == "ok"
    assert doctor.invoke("c").agent == "morphine"
    assert [r.model for r in fake_openai.requests] == ["doctor-model", "pharmacist-model", "doctor-model"]
    assert len(fake_openai.requests_for("doctor-model")) == 2
    assert fake_openai.pending("doctor-model") == fake_openai.pending("pharmacist-model") == 0


def test_handler_fallback(fake_openai: FakeOpenAI) -> None:
    fake_openai.handler = lambda req: Reply.text(f"echo:{req['messages'][-1]['content']}")
    assert llm(fake_openai).invoke("hello").content == "echo:hello"


def test_malformed_json_json_schema_raises(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Reply.raw('{"agent": "nitro'))
    with pytest.raises(ValidationError, match="json_invalid|Invalid JSON"):
        llm(fake_openai).with_structured_output(Dx, method="json_schema").invoke("x")


def test_malformed_json_function_calling_is_invalid_tool_call(fake_openai: FakeOpenAI) -> None:
    # langchain-core puts unparsable tool args in invalid_tool_calls and the parser yields None (no raise).
    fake_openai.script(Reply.raw('{"agent": "nitro'))
    out = llm(fake_openai).with_structured_output(Dx, method="function_calling", include_raw=True).invoke("x")
    assert out["parsed"] is None
    assert out["raw"].invalid_tool_calls[0]["args"] == '{"agent": "nitro'


@pytest.mark.parametrize(("status", "exc"), [(500, openai.InternalServerError),
                                             (503, openai.InternalServerError),
                                             (429, openai.RateLimitError)])
def test_http_errors(fake_openai: FakeOpenAI, status: int, exc: type[Exception]) -> None:
    fake_openai.script(Reply.http_error(status, "boom"))
    with pytest.raises(exc, match="boom"):
        llm(fake_openai).invoke("x")


def test_exhausted_script_fails_loudly(fake_openai: FakeOpenAI) -> None:
    with pytest.raises(openai.InternalServerError, match="script exhausted"):
        llm(fake_openai).invoke("x")


def test_delay_beyond_client_timeout(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Reply.text("late", delay=3.0))
    with pytest.raises(openai.APITimeoutError):
        llm(fake_openai, timeout=0.3).invoke("x")


def test_connection_drop(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Reply.drop_connection(), "after drop")
    with pytest.raises(openai.APIConnectionError):
        llm(fake_openai).invoke("x")
    assert llm(fake_openai).invoke("y").content == "after drop"  # server still healthy


def test_stream_rejected(fake_openai: FakeOpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="stream"):
        list(llm(fake_openai).stream("x"))


def test_requests_recorded(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("one", model="doctor-model")
    fake_openai.script("two", model="pharmacist-model")
    llm(fake_openai, "doctor-model").invoke("first")
    llm(fake_openai, "pharmacist-model").invoke("second")
    reqs = fake_openai.requests
    assert [(r.method, r.path, r.model) for r in reqs] == [
        ("POST", "/v1/chat/completions", "doctor-model"),
        ("POST", "/v1/chat/completions", "pharmacist-model")]
    assert all(r.headers["authorization"] == "Bearer test-key" for r in reqs)
    assert reqs[1].messages[-1]["content"] == "second"
    fake_openai.reset()
    assert fake_openai.requests == [] and fake_openai.pending("doctor-model") == 0


def test_latency_applied(fake_openai: FakeOpenAI) -> None:
    fake_openai.latency = 0.3
    fake_openai.script("slow")
    t0 = time.perf_counter()
    llm(fake_openai).invoke("x")
    assert time.perf_counter() - t0 >= 0.3


def test_models_endpoint(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("x", model="doctor-model")
    client = openai.OpenAI(base_url=fake_openai.base_url, api_key="test-key", max_retries=0)
    assert [m.id for m in client.models.list()] == ["doctor-model"]


def test_keep_alive_and_content_length(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("a", "b")
    conn = http.client.HTTPConnection("127.0.0.1", fake_openai.port, timeout=5)
    try:
        for expected in ("a", "b"):  # two requests on one socket
            conn.request("POST", "/v1/chat/completions", body=json.dumps({"model": "m", "messages": []}),
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            assert resp.status == 200 and int(resp.headers["Content-Length"]) == len(data)
            assert json.loads(data)["choices"][0]["message"]["content"] == expected
    finally:
        conn.close()


def test_many_servers_no_leaked_threads() -> None:
    before = set(threading.enumerate())
    for _ in range(20):
        with FakeOpenAI() as server:
            server.script("hi", Reply.text("slow", delay=5.0))
            model = llm(server, timeout=0.1)
            assert model.invoke("x").content == "hi"  # leaves an idle keep-alive connection
            with pytest.raises(openai.APITimeoutError):
                model.invoke("x")  # leaves a handler sleeping on its delay
    leaked = [t for t in set(threading.enumerate()) - before if t.name.startswith("fake-openai")]
    assert leaked == []
