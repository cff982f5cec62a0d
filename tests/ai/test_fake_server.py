"""The fake LLM server against the real SDKs: wire formats, usage, faults, control plane.

Every client is built with max_retries=0 so a fault surfaces exactly once.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import anthropic
import httpx2
import openai
import pytest

from tests.fakes.llm_server import DEFAULT_REPLY, FakeLLMServer, Fault, RemoteControl

ROOT = Path(__file__).resolve().parents[2]
USER = [{"role": "user", "content": "tell me something nice please"}]  # 5 words
OPENAI_MESSAGES = [{"role": "system", "content": "You are kind"}, *USER]  # 3 + 5 words
ANTHROPIC_SYSTEM = "You are kind"  # 3 words
EXPECTED_INPUT = 8
EXPECTED_OUTPUT = math.ceil(len(DEFAULT_REPLY) / 5)  # default chunk_size 5
API_VERSION = "2024-10-21"


@pytest.fixture(scope="module")
def server():
    with FakeLLMServer() as srv:
        yield srv


@pytest.fixture(autouse=True)
def _clean(server):
    server.reset()
    yield
    server.reset()


@pytest.fixture
async def oai(server):
    client = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="sk-test-openai", max_retries=0, timeout=5)
    yield client
    await client.close()


@pytest.fixture
async def azure(server):
    client = openai.AsyncAzureOpenAI(
        azure_endpoint=server.azure_endpoint,
        azure_deployment="prod-gpt4o",
        api_version=API_VERSION,
        api_key="azure-test-key",
        max_retries=0,
        timeout=5,
    )
    yield client
    await client.close()


@pytest.fixture
async def claude(server):
    client = anthropic.AsyncAnthropic(
        base_url=server.anthropic_base_url, api_key="sk-ant-test", max_retries=0, timeout=5
    )
    yield client
    await client.close()


async def openai_call(client, *, stream=False, include_usage=True, model="gpt-4o-mini", **kw):
    if not stream:
        return await client.chat.completions.create(model=model, messages=OPENAI_MESSAGES, **kw)
    extra = {"stream_options": {"include_usage": True}} if include_usage else {}
    return await client.chat.completions.create(model=model, messages=OPENAI_MESSAGES, stream=True, **extra, **kw)


async def collect_openai_stream(stream):
    chunks = []
    async for chunk in stream:
        chunks.append(chunk)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return chunks, text


async def claude_call(client, *, stream=False, **kw):
    return await client.messages.create(
        model="claude-test-model", max_tokens=256, system=ANTHROPIC_SYSTEM, messages=USER, stream=stream, **kw
    )


async def collect_claude_stream(stream):
    events = []
    async for event in stream:
        events.append(event)
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    return events, text


def openai_usage_tuple(usage):
    return (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens, usage.prompt_tokens_details.cached_tokens)


def claude_usage_tuple(usage):
    return (usage.input_tokens, usage.output_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens)


# -- OpenAI ------------------------------------------------------------------------------------


async def test_openai_non_stream(server, oai):
    resp = await openai_call(oai)
    assert resp.object == "chat.completion"
    assert resp.id.startswith("chatcmpl-")
    assert resp.model == "gpt-4o-mini"
    assert resp.choices[0].message.role == "assistant"
    assert resp.choices[0].message.content == DEFAULT_REPLY
    assert resp.choices[0].finish_reason == "stop"
    assert openai_usage_tuple(resp.usage) == (EXPECTED_INPUT, EXPECTED_OUTPUT, EXPECTED_INPUT + EXPECTED_OUTPUT, 0)
    assert resp._request_id

    (rec,) = server.requests
    assert rec.api == "openai" and rec.path == "/v1/chat/completions"
    assert rec.headers["authorization"] == "Bearer sk-test-openai"
    assert rec.json["messages"] == OPENAI_MESSAGES
    assert server.count() == server.count("openai") == 1 and server.count("anthropic") == 0


async def test_openai_stream_matches_non_stream(server, oai):
    plain = await openai_call(oai)
    chunks, text = await collect_openai_stream(await openai_call(oai, stream=True))
    assert text == DEFAULT_REPLY
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    content = [c.choices[0].delta.content for c in chunks[1:] if c.choices and c.choices[0].delta.content]
    assert content == [DEFAULT_REPLY[i : i + 5] for i in range(0, len(DEFAULT_REPLY), 5)]
    finishing = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finishing) == 1 and finishing[0].choices[0].finish_reason == "stop"
    # the usage chunk comes last, with no choices; the others carry usage None
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert all(c.usage is None for c in chunks[:-1])
    assert openai_usage_tuple(chunks[-1].usage) == openai_usage_tuple(plain.usage)
    assert server.requests[-1].json["stream"] is True


async def test_openai_stream_without_include_usage_has_no_usage(oai):
    chunks, text = await collect_openai_stream(await openai_call(oai, stream=True, include_usage=False))
    assert text == DEFAULT_REPLY
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_reply_text_chunk_size_and_usage_override(server, oai, claude):
    server.reply_text = "abcdefghij" * 3
    server.chunk_size = 7
    chunks, text = await collect_openai_stream(await openai_call(oai, stream=True))
    assert text == "abcdefghij" * 3
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 5
    assert chunks[-1].usage.completion_tokens == 5

    server.usage_override = {"input_tokens": 1000, "output_tokens": 42, "cached_input_tokens": 600}
    plain = await openai_call(oai)
    assert openai_usage_tuple(plain.usage) == (1000, 42, 1042, 600)
    chunks, _ = await collect_openai_stream(await openai_call(oai, stream=True))
    assert openai_usage_tuple(chunks[-1].usage) == (1000, 42, 1042, 600)

    msg = await claude_call(claude)
    assert claude_usage_tuple(msg.usage) == (1000, 42, 600, 0)
    async with claude.messages.stream(model="m", max_tokens=10, messages=USER) as stream:
        final = await stream.get_final_message()
    assert claude_usage_tuple(final.usage) == (1000, 42, 600, 0)


# -- Azure -------------------------------------------------------------------------------------


async def test_azure_non_stream_and_stream(server, azure):
    plain = await azure.chat.completions.create(model="gpt-4o", messages=OPENAI_MESSAGES)
    assert plain.choices[0].message.content == DEFAULT_REPLY
    assert openai_usage_tuple(plain.usage) == (EXPECTED_INPUT, EXPECTED_OUTPUT, EXPECTED_INPUT + EXPECTED_OUTPUT, 0)

    stream = await azure.chat.completions.create(
        model="gpt-4o", messages=OPENAI_MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks, text = await collect_openai_stream(stream)
    assert text == DEFAULT_REPLY
    # Azure's first chunk carries prompt_filter_results and no choices, like the real service
    assert chunks[0].choices == [] and chunks[0].model_extra.get("prompt_filter_results")
    assert openai_usage_tuple(chunks[-1].usage) == openai_usage_tuple(plain.usage)

    for rec in server.requests:
        assert rec.api == "openai"
        assert rec.path == "/openai/deployments/prod-gpt4o/chat/completions"
        assert rec.query == {"api-version": API_VERSION}
        assert rec.headers["api-key"] == "azure-test-key"
    assert server.count("openai") == 2


async def test_azure_model_defaults_to_deployment_and_needs_api_version(server):
    async with aiohttp.ClientSession() as session:
        url = f"{server.base_url}/openai/deployments/my-dep/chat/completions"
        async with session.post(url, params={"api-version": API_VERSION}, json={"messages": USER}) as resp:
            assert resp.status == 200
            assert (await resp.json())["model"] == "my-dep"
        async with session.post(url, json={"messages": USER}) as resp:
            assert resp.status == 404


# -- Anthropic ---------------------------------------------------------------------------------


async def test_anthropic_non_stream(server, claude):
    msg = await claude_call(claude)
    assert msg.type == "message" and msg.role == "assistant" and msg.id.startswith("msg_")
    assert msg.model == "claude-test-model"
    assert [(b.type, b.text) for b in msg.content] == [("text", DEFAULT_REPLY)]
    assert msg.stop_reason == "end_turn"
    assert claude_usage_tuple(msg.usage) == (EXPECTED_INPUT, EXPECTED_OUTPUT, 0, 0)
    (rec,) = server.requests
    assert rec.api == "anthropic" and rec.path == "/v1/messages"
    # anthropic 2.x sends the API key as "Authorization: Bearer ..." (older SDKs: "x-api-key")
    assert "sk-ant-test" in (rec.headers.get("x-api-key") or rec.headers.get("authorization", ""))
    assert rec.headers["anthropic-version"]
    assert rec.json["system"] == ANTHROPIC_SYSTEM


async def test_anthropic_stream_events_and_usage(claude):
    plain = await claude_call(claude)
    events, text = await collect_claude_stream(await claude_call(claude, stream=True))
    assert text == DEFAULT_REPLY
    types = [e.type for e in events]
    assert types == (
        ["message_start", "content_block_start"]
        + ["content_block_delta"] * EXPECTED_OUTPUT
        + ["content_block_stop", "message_delta", "message_stop"]
    )
    assert events[0].message.usage.input_tokens == EXPECTED_INPUT
    delta = next(e for e in events if e.type == "message_delta")
    assert delta.delta.stop_reason == "end_turn"
    assert delta.usage.output_tokens == plain.usage.output_tokens == EXPECTED_OUTPUT

    async with claude.messages.stream(model="m", max_tokens=10, system=ANTHROPIC_SYSTEM, messages=USER) as stream:
        streamed = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert streamed == DEFAULT_REPLY
    assert claude_usage_tuple(final.usage) == claude_usage_tuple(plain.usage)
    assert final.stop_reason == "end_turn"


async def test_anthropic_raw_sse_wire_format(server):
    body = {"model": "m", "max_tokens": 10, "messages": USER, "stream": True}
    async with aiohttp.ClientSession() as session, session.post(f"{server.base_url}/v1/messages", json=body) as resp:
        assert resp.status == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        raw = await resp.text()
    blocks = [b for b in raw.split("\n\n") if b]
    names = [b.split("\n")[0] for b in blocks]
    assert names[:3] == ["event: message_start", "event: content_block_start", "event: ping"]
    assert names[-3:] == ["event: content_block_stop", "event: message_delta", "event: message_stop"]
    for block in blocks:
        event_line, data_line = block.split("\n")
        assert json.loads(data_line.removeprefix("data: "))["type"] == event_line.removeprefix("event: ")


# -- faults: error statuses --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "exc", "error_type"),
    [
        (400, openai.BadRequestError, "invalid_request_error"),
        (401, openai.AuthenticationError, "authentication_error"),
        (403, openai.PermissionDeniedError, "permission_error"),
        (404, openai.NotFoundError, "invalid_request_error"),
        (429, openai.RateLimitError, "rate_limit_error"),
        (500, openai.InternalServerError, "server_error"),
        (503, openai.InternalServerError, "server_error"),
        (529, openai.InternalServerError, "server_error"),
    ],
)
async def test_openai_status_faults(server, oai, status, exc, error_type):
    server.add_fault(Fault("status", status=status, retry_after="2"))
    with pytest.raises(exc) as info:
        await openai_call(oai)
    err = info.value
    assert err.status_code == status
    assert err.type == error_type
    assert err.response.headers["retry-after"] == "2"
    assert set(err.body) == {"message", "type", "param", "code"}
    # the fault was used up: the next call succeeds
    assert (await openai_call(oai)).choices[0].message.content == DEFAULT_REPLY


@pytest.mark.parametrize(
    ("status", "exc", "error_type"),
    [
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (401, anthropic.AuthenticationError, "authentication_error"),
        (403, anthropic.PermissionDeniedError, "permission_error"),
        (404, anthropic.NotFoundError, "not_found_error"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (503, anthropic.InternalServerError, "api_error"),
        (529, anthropic.InternalServerError, "overloaded_error"),
    ],
)
async def test_anthropic_status_faults(server, claude, status, exc, error_type):
    server.add_fault(Fault("status", status=status, retry_after="7"))
    with pytest.raises(exc) as info:
        await claude_call(claude)
    err = info.value
    assert err.status_code == status
    assert err.type == error_type
    assert err.body["type"] == "error" and err.body["error"]["type"] == error_type
    assert err.response.headers["retry-after"] == "7"
    assert (await claude_call(claude)).content[0].text == DEFAULT_REPLY


async def test_status_fault_on_stream_request_fails_before_streaming(server, oai, azure, claude):
    server.add_fault(Fault("status", status=429, retry_after="1"), times=3)
    with pytest.raises(openai.RateLimitError):
        await openai_call(oai, stream=True)
    with pytest.raises(openai.RateLimitError):
        await azure.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
    with pytest.raises(anthropic.RateLimitError):
        await claude_call(claude, stream=True)
    assert server.pending_faults() == 0


async def test_faults_target_an_api_and_a_number_of_requests(server, oai, claude):
    server.add_fault(Fault("status", status=503), times=2, api="anthropic")
    assert (await openai_call(oai)).choices[0].message.content == DEFAULT_REPLY
    for _ in range(2):
        with pytest.raises(anthropic.InternalServerError):
            await claude_call(claude)
    assert (await claude_call(claude)).stop_reason == "end_turn"
    with pytest.raises(ValueError):
        Fault("explode")


# -- faults: timing ----------------------------------------------------------------------------


async def test_slow_first_byte_and_latency(server, oai, claude):
    server.add_fault(Fault("slow_first_byte", delay=0.3))
    started = time.perf_counter()
    assert (await openai_call(oai)).choices[0].message.content == DEFAULT_REPLY
    assert time.perf_counter() - started >= 0.3

    server.add_fault(Fault("slow_first_byte", delay=2))
    with pytest.raises(anthropic.APITimeoutError):
        await claude_call(claude, timeout=0.2)

    server.latency = 0.2
    started = time.perf_counter()
    _, text = await collect_claude_stream(await claude_call(claude, stream=True))
    assert text == DEFAULT_REPLY and time.perf_counter() - started >= 0.2


async def test_hang_times_out_without_blocking_others(server, oai, claude):
    server.add_fault(Fault("hang"), times=2)
    hung_openai = asyncio.create_task(openai_call(oai, timeout=0.4))
    hung_claude = asyncio.create_task(claude_call(claude, stream=True, timeout=0.4))
    # Both hung requests must have reached the server (and taken the two faults) before the others
    # are sent, or on a busy machine another request could take a fault.
    for _ in range(500):
        if server.pending_faults() == 0:
            break
        await asyncio.sleep(0.01)
    assert server.pending_faults() == 0, "the hung requests did not reach the fake server"
    # while both hang, other requests are served
    assert (await openai_call(oai)).choices[0].message.content == DEFAULT_REPLY
    assert (await claude_call(claude)).content[0].text == DEFAULT_REPLY
    with pytest.raises(openai.APITimeoutError):
        await hung_openai
    with pytest.raises(anthropic.APITimeoutError):
        await hung_claude


# -- faults: broken streams --------------------------------------------------------------------


async def test_drop_mid_stream(server, oai, claude):
    server.add_fault(Fault("drop_mid_stream", after_chunks=2), api="openai")
    received = []
    with pytest.raises(openai.APIConnectionError):
        async for chunk in await openai_call(oai, stream=True):
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    assert received == [DEFAULT_REPLY[0:5], DEFAULT_REPLY[5:10]]

    server.add_fault(Fault("drop_mid_stream", after_chunks=3), api="anthropic")
    received = []
    # the Anthropic SDK lets the transport's error through unwrapped mid-stream
    with pytest.raises((anthropic.APIConnectionError, httpx2.TransportError)):
        async for event in await claude_call(claude, stream=True):
            if event.type == "content_block_delta":
                received.append(event.delta.text)
            assert event.type not in ("message_delta", "message_stop")
    assert "".join(received) == DEFAULT_REPLY[:15]

    # a non-stream request loses its connection before any response
    server.add_fault(Fault("drop_mid_stream"), times=2)
    with pytest.raises(openai.APIConnectionError):
        await openai_call(oai)
    with pytest.raises(anthropic.APIConnectionError):
        await claude_call(claude)


async def test_malformed_chunk(server, oai, claude):
    server.add_fault(Fault("malformed_chunk", after_chunks=1), api="openai")
    received = []
    with pytest.raises(ValueError):  # json.JSONDecodeError, straight from both SDKs
        async for chunk in await openai_call(oai, stream=True):
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    assert received == [DEFAULT_REPLY[:5]]

    server.add_fault(Fault("malformed_chunk", after_chunks=2), api="anthropic")
    received = []
    with pytest.raises(ValueError):
        async for event in await claude_call(claude, stream=True):
            if event.type == "content_block_delta":
                received.append(event.delta.text)
    assert "".join(received) == DEFAULT_REPLY[:10]

    # the server is fine afterwards, on the same keep-alive clients
    assert (await openai_call(oai)).choices[0].message.content == DEFAULT_REPLY
    assert (await claude_call(claude)).content[0].text == DEFAULT_REPLY


async def test_stream_error_event(server, oai, claude):
    server.add_fault(Fault("stream_error", status=529, after_chunks=1), times=2)
    with pytest.raises(openai.APIError) as oerr:
        async for _ in await openai_call(oai, stream=True):
            pass
    assert oerr.value.type == "server_error"
    with pytest.raises(anthropic.APIStatusError) as aerr:
        async for _ in await claude_call(claude, stream=True):
            pass
    assert aerr.value.type == "overloaded_error"


# -- faults: content filter --------------------------------------------------------------------


async def test_content_filter(server, oai, azure, claude):
    server.add_fault(Fault("content_filter"), times=6)

    resp = await openai_call(oai)
    assert resp.choices[0].finish_reason == "content_filter"
    assert not resp.choices[0].message.content
    assert resp.usage.completion_tokens == 0 and resp.usage.prompt_tokens == EXPECTED_INPUT

    chunks, text = await collect_openai_stream(await openai_call(oai, stream=True))
    assert text == ""
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["content_filter"]
    assert openai_usage_tuple(chunks[-1].usage) == openai_usage_tuple(resp.usage)

    az = await azure.chat.completions.create(model="gpt-4o", messages=USER)
    assert az.choices[0].finish_reason == "content_filter"

    msg = await claude_call(claude)
    assert msg.stop_reason == "refusal" and msg.content == []
    events, text = await collect_claude_stream(await claude_call(claude, stream=True))
    assert text == ""
    (delta,) = [e for e in events if e.type == "message_delta"]
    assert delta.delta.stop_reason == "refusal"
    async with claude.messages.stream(model="m", max_tokens=10, messages=USER) as stream:
        final = await stream.get_final_message()
    assert final.stop_reason == "refusal"
    assert server.pending_faults() == 0


# -- control plane, concurrency, CLI -----------------------------------------------------------


async def test_http_control_endpoints(server, oai):
    async with aiohttp.ClientSession() as session:

        async def post(path, body):
            async with session.post(server.base_url + path, json=body) as resp:
                return resp.status, await resp.json()

        async def stats():
            async with session.get(server.base_url + "/_control/stats") as resp:
                return await resp.json()

        status, body = await post("/_control/config", {"reply_text": "configured reply", "chunk_size": 4})
        assert status == 200 and body["config"]["reply_text"] == "configured reply"
        chunks, text = await collect_openai_stream(await openai_call(oai, stream=True))
        assert text == "configured reply" and chunks[-1].usage.completion_tokens == 4

        status, _ = await post(
            "/_control/faults",
            {"fault": {"kind": "status", "status": 429, "retry_after": "3"}, "times": 1, "api": None},
        )
        assert status == 200
        with pytest.raises(openai.RateLimitError) as info:
            await openai_call(oai)
        assert info.value.response.headers["retry-after"] == "3"

        assert await stats() == {"requests": 2, "by_api": {"openai": 2}, "pending_faults": 0}

        status, _ = await post("/_control/faults", {"fault": {"kind": "nope"}})
        assert status == 400
        status, _ = await post("/_control/config", {"chunk_size": 0})
        assert status == 400

        await post("/_control/faults", {"fault": {"kind": "hang"}, "times": 5})
        status, _ = await post("/_control/reset", {})
        assert status == 200
        assert await stats() == {"requests": 0, "by_api": {}, "pending_faults": 0}
        assert server.reply_text == DEFAULT_REPLY and server.requests == []
        assert (await openai_call(oai)).choices[0].message.content == DEFAULT_REPLY


async def test_fifty_concurrent_requests(server, oai, azure, claude):
    async def one(i):
        kind = i % 5
        if kind == 0:
            return (await openai_call(oai)).choices[0].message.content
        if kind == 1:
            return (await collect_openai_stream(await openai_call(oai, stream=True)))[1]
        if kind == 2:
            return (await azure.chat.completions.create(model="gpt-4o", messages=USER)).choices[0].message.content
        if kind == 3:
            return (await claude_call(claude)).content[0].text
        return (await collect_claude_stream(await claude_call(claude, stream=True)))[1]

    results = await asyncio.gather(*(one(i) for i in range(50)))
    assert results == [DEFAULT_REPLY] * 50
    assert server.count() == 50 and server.count("openai") == 30 and server.count("anthropic") == 20


def test_cli_subprocess_and_remote_control():
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.llm_server", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("READY http://127.0.0.1:"), line
        base_url = line.split()[1]
        remote = RemoteControl(base_url)
        assert remote.configure(reply_text="from afar")["reply_text"] == "from afar"
        remote.add_fault(Fault("status", status=401), api="anthropic")
        assert remote.stats() == {"requests": 0, "by_api": {}, "pending_faults": 1}

        async def use():
            client = anthropic.AsyncAnthropic(base_url=base_url, api_key="k", max_retries=0, timeout=5)
            try:
                with pytest.raises(anthropic.AuthenticationError):
                    await claude_call(client)
                return (await claude_call(client)).content[0].text
            finally:
                await client.close()

        assert asyncio.run(use()) == "from afar"
        assert remote.stats()["by_api"] == {"anthropic": 2}
        remote.reset()
        assert remote.stats()["requests"] == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
