"""What the gateway does per request under concurrency: no repeated thread hops or queries, the
SDK called without its per-call parameter transform, and the ledger written in one statement."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async

from apps.ai import gateway
from apps.ai import registry as registry_module
from apps.ai.ledger import ledger
from apps.ai.models import AIRequestLog
from apps.ai.registry import registry
from apps.ai.types import AIRequest, Message

pytestmark = pytest.mark.django_db(transaction=True)


def ask(text: str, **options) -> AIRequest:
    return AIRequest(feature="test.chat", messages=[Message("user", text)], temperature=0.7, **options)


async def test_fifty_requests_in_flight_read_the_credentials_version_once(ai, monkeypatch):
    from apps.accounts.models import Agency

    agency = await Agency.objects.acreate(name="Hot path")
    reads = []
    original = registry_module.cache.aget

    async def counting_aget(key, default=None):
        if key.startswith("ai:credentials-version:"):  # not the budget checks' own reads (billing's plan)
            reads.append(key)
        await asyncio.sleep(0.01)  # a slow cache: every caller arrives while the first read is pending
        return await original(key, default)

    monkeypatch.setattr(registry_module.cache, "aget", counting_aget)
    loads = []
    original_configs = registry_module._agency_configs
    monkeypatch.setattr(
        registry_module, "_agency_configs", lambda agency_id: loads.append(agency_id) or original_configs(agency_id)
    )
    responses = await asyncio.gather(*(gateway.generate(ask(f"hello {i}", agency_id=agency.pk)) for i in range(50)))
    assert all(r.provider == "openai" for r in responses)
    assert len(reads) == 1 and loads == [agency.pk]
    assert ai.count("openai") == 50


async def test_the_provider_sends_the_same_body_as_the_sdk_would(ai):
    """The body the gateway builds goes out as the SDK's own transform would have sent it."""
    from openai._utils import async_maybe_transform
    from openai.types.chat import completion_create_params

    await gateway.generate(ask("Say hi", max_tokens=50, json_mode=True, system="You write JSON"))
    sent = ai.requests[-1].json
    expected = await async_maybe_transform(
        {k: v for k, v in sent.items()}, completion_create_params.CompletionCreateParamsNonStreaming
    )
    assert sent == expected
    assert sent["response_format"] == {"type": "json_object"} and sent["max_completion_tokens"] == 50


async def test_ledger_rows_are_written_in_one_statement_with_defaults_and_types(ai):
    from apps.accounts.models import Agency

    agency = await Agency.objects.acreate(name="Ledger")
    await asyncio.gather(*(gateway.generate(ask(f"row {i}", agency_id=agency.pk)) for i in range(30)))
    ledger.record(agency_id=agency.pk, feature="test.minimal", request_id="r")  # only the required fields
    assert await ledger.aflush() == 31
    rows = [row async for row in AIRequestLog.objects.filter(agency=agency).order_by("id")]
    assert len(rows) == 31
    assert all(row.provider == "openai" and row.cost_usd > 0 and row.created_at.tzinfo for row in rows[:30])
    minimal = rows[-1]
    assert (minimal.provider, minimal.input_tokens, minimal.cost_usd, minimal.cache_hit, minimal.ttft_ms) == (
        "",
        0,
        Decimal("0"),
        False,
        None,
    )
    # the same rows are found by the time filters the dashboards use
    since = rows[0].created_at
    assert await AIRequestLog.objects.filter(agency=agency, created_at__gte=since).acount() == 31


async def test_a_ledger_batch_with_a_deleted_creator_keeps_every_row(ai):
    from apps.accounts.models import Agency, Creator

    agency = await Agency.objects.acreate(name="Gone")
    creator = await Creator.objects.acreate(agency=agency, display_name="Gone soon", persona="p")
    ledger.record(agency_id=agency.pk, creator_id=creator.pk, feature="test.a")
    ledger.record(agency_id=agency.pk, creator_id=creator.pk + 10_000, feature="test.b")  # no such creator
    assert await ledger.aflush() == 2
    rows = {row.feature: row.creator_id async for row in AIRequestLog.objects.filter(agency=agency)}
    assert rows == {"test.a": creator.pk, "test.b": None}
    await sync_to_async(registry.reset)()


async def test_a_provider_that_stalls_mid_stream_ends_alone_and_slows_no_other_stream(ai):
    """Ten streams at once; the provider stops sending on one after three chunks. That stream ends
    with a TIMEOUT (the text so far kept) after its own timeout; the nine others finish at their
    normal pace, and nothing waits on the stalled one."""
    from apps.ai.types import ErrorKind, StreamChunk, StreamComplete, StreamError
    from tests.fakes.llm_server import Fault

    ai.configure(reply_text="word " * 60, chunk_size=5, chunk_delay=0.005)
    ai.add_fault(Fault("stall_mid_stream", after_chunks=3), times=1, api="openai")
    started = asyncio.get_running_loop().time()

    async def one(index: int):
        if index:
            await asyncio.sleep(0.05)  # the stalled stream is the first request the server sees
        events = [event async for event in gateway.stream(ask(f"stream {index}", timeout=1.0))]
        return events, asyncio.get_running_loop().time() - started

    outcomes = await asyncio.gather(*(one(i) for i in range(10)))
    stalled, stalled_at = outcomes[0]
    assert isinstance(stalled[-1], StreamError) and stalled[-1].error.kind == ErrorKind.TIMEOUT
    assert stalled[-1].partial_text == "word " * 3 and sum(isinstance(e, StreamChunk) for e in stalled) == 3
    assert 1.0 <= stalled_at < 3.0
    for events, finished_at in outcomes[1:]:
        assert isinstance(events[-1], StreamComplete) and events[-1].response.text == "word " * 60
        assert finished_at < 1.0  # done before the stalled stream's timeout even fired


async def test_a_slow_reader_does_not_stall_the_provider_timer(ai):
    """The stall timer runs only while the gateway waits for the provider: a caller that takes
    longer than the timeout between chunks is not mistaken for a stalled provider."""
    from apps.ai.types import StreamComplete

    ai.configure(reply_text="slow reader " * 3, chunk_size=6)
    events = []
    async for event in gateway.stream(ask("read slowly", timeout=0.2)):
        events.append(event)
        await asyncio.sleep(0.3)
    assert isinstance(events[-1], StreamComplete) and events[-1].response.text == "slow reader " * 3


async def test_the_stall_timer_bounds_each_wait_not_the_whole_answer(ai):
    """Every wait for the next chunk is shorter than the timeout while the answer as a whole takes
    several times it: the answer completes. The timer that fired during a short wait is re-armed
    for the wait in progress, not spent."""
    from apps.ai.types import StreamChunk, StreamComplete

    ai.configure(reply_text="steady words " * 8, chunk_size=13, chunk_delay=0.1)
    started = asyncio.get_running_loop().time()
    events = [event async for event in gateway.stream(ask("steady pace", timeout=0.5))]
    assert isinstance(events[-1], StreamComplete) and events[-1].response.text == "steady words " * 8
    assert sum(isinstance(event, StreamChunk) for event in events) == 8
    assert asyncio.get_running_loop().time() - started > 0.5  # longer than the timeout in all


async def test_a_caller_cancelling_a_waiting_stream_is_a_cancellation_not_a_timeout(ai):
    from apps.ai.types import StreamChunk

    ai.configure(reply_text="never mind " * 20, chunk_size=11, chunk_delay=0.2)
    received = []

    async def read():
        async for event in gateway.stream(ask("cancel me", timeout=5.0)):
            received.append(event)

    task = asyncio.create_task(read())
    while not received:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert all(isinstance(event, StreamChunk) for event in received)


@pytest.mark.parametrize("also_cancelled", [False, True])
async def test_the_stall_timer_turns_only_its_own_cancellation_into_a_timeout(also_cancelled):
    """The wait outlasts the timeout: TimeoutError. When someone else cancels the task in the same
    loop turn as the expiry (the member closed the tab), the cancellation is theirs and stays one."""
    from apps.ai.gateway import _StallTimeout

    never = asyncio.get_running_loop().create_future()

    async def wait() -> None:
        async with _StallTimeout(0.05) as stall:
            stall.waiting()
            await never

    task = asyncio.create_task(wait())
    if also_cancelled:  # runs when the expiry cancels the awaited future, before the task resumes
        never.add_done_callback(lambda _: task.cancel())
    with pytest.raises(asyncio.CancelledError if also_cancelled else TimeoutError):
        await task
