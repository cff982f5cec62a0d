"""The AI gateway end to end: the real openai and anthropic SDKs against the loopback fake."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import random
import time

import pytest
from asgiref.sync import sync_to_async

from apps.ai import gateway, resilience
from apps.ai.ledger import ledger
from apps.ai.models import AIRequestLog
from apps.ai.pricing import cost_usd
from apps.ai.types import AIError, AIRequest, ErrorKind, Message, StreamChunk, StreamComplete, StreamError, Usage
from apps.core import metrics
from apps.monitoring.models import MetricSample
from tests.ai.conftest import OPENAI_KEY
from tests.fakes.llm_server import Fault

pytestmark = pytest.mark.django_db(transaction=True)


def ask(text: str = "Say hello to my fans", **options) -> AIRequest:
    return AIRequest(feature="test.chat", messages=[Message("user", text)], **options)


async def collect(request: AIRequest) -> list:
    return [event async for event in gateway.stream(request)]


async def test_openai_answer_with_usage_cost_and_ledger(ai):
    response = await gateway.generate(ask())
    assert response.text == ai.reply_text
    assert (response.provider, response.model) == ("openai", "gpt-4o-mini")
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert response.cost_usd == cost_usd("gpt-4o-mini", response.usage) > 0
    assert not (response.cache_hit or response.degraded or response.fallback_used)
    assert ai.count("openai") == 1
    assert ai.requests[-1].headers["authorization"] == f"Bearer {OPENAI_KEY}"
    await ledger.aflush()
    row = await AIRequestLog.objects.aget()
    assert (row.provider, row.model, row.input_tokens, row.output_tokens) == (
        "openai", "gpt-4o-mini", response.usage.input_tokens, response.usage.output_tokens,
    )  # fmt: skip
    assert row.cost_usd == response.cost_usd and row.attempts == 1 and row.error_kind == ""


@pytest.mark.parametrize("fault", [Fault("status", status=400), Fault("content_filter")])
async def test_invalid_request_and_content_filter_stop_the_chain(ai, fault):
    ai.add_fault(fault, times=5, api="openai")
    with pytest.raises(AIError) as caught:
        await gateway.generate(ask())
    assert caught.value.kind in {ErrorKind.INVALID_REQUEST, ErrorKind.CONTENT_FILTER}
    assert ai.count("anthropic") == 0  # no routing around a refusal or a bad request
    await ledger.aflush()
    assert (await AIRequestLog.objects.aget()).error_kind == caught.value.kind.value


@pytest.mark.parametrize(
    "fault, kind, retryable",
    [
        (Fault("status", status=429, retry_after="7"), ErrorKind.RATE_LIMIT, True),
        (Fault("status", status=401), ErrorKind.AUTHENTICATION, False),
        (Fault("status", status=403), ErrorKind.AUTHENTICATION, False),
        (Fault("status", status=400), ErrorKind.INVALID_REQUEST, False),
        (Fault("status", status=500), ErrorKind.SERVER_ERROR, True),
        (Fault("status", status=503), ErrorKind.SERVER_ERROR, True),
        (Fault("hang"), ErrorKind.TIMEOUT, True),
        (Fault("drop_mid_stream"), ErrorKind.NETWORK_ERROR, True),
        (Fault("content_filter"), ErrorKind.CONTENT_FILTER, False),
    ],
)
@pytest.mark.parametrize("api", ["openai", "anthropic"])
async def test_provider_error_mapping(ai, fault, kind, retryable, api):
    from apps.ai.registry import registry

    providers = {p.name: p for p in await registry.providers_for(None)}
    provider = providers[api]
    ai.add_fault(fault, api=api)
    with pytest.raises(AIError) as caught:
        await provider.complete(ask(), provider.models[0], timeout=0.5)
    error = caught.value
    assert (error.kind, error.retryable, error.provider) == (kind, retryable, api)
    if fault.kind == "status" and fault.status == 429:
        assert error.retry_after == pytest.approx(7)


async def test_retries_then_succeeds_and_counts_attempts(ai):
    ai.add_fault(Fault("status", status=503), times=2, api="openai")
    response = await gateway.generate(ask())
    assert response.provider == "openai" and response.attempts == 3
    assert ai.count("openai") == 3 and ai.count("anthropic") == 0


async def test_retry_after_is_honoured(ai):
    ai.add_fault(Fault("status", status=429, retry_after="1"), times=1, api="openai")
    started = time.monotonic()
    response = await gateway.generate(ask())
    assert time.monotonic() - started >= 1.0
    assert response.provider == "openai" and response.attempts == 2


async def test_retry_after_longer_than_allowed_falls_back_at_once(ai, settings):
    settings.AI_MAX_RETRY_AFTER_SECONDS = 5
    ai.add_fault(Fault("status", status=429, retry_after="60"), times=1, api="openai")
    started = time.monotonic()
    response = await gateway.generate(ask())
    assert time.monotonic() - started < 2
    assert response.provider == "anthropic" and response.fallback_used


def test_backoff_is_exponential_with_full_jitter():
    rng = random.Random(7)
    for attempt, cap in [(1, 0.25), (2, 0.5), (3, 1.0), (6, 8.0), (12, 8.0)]:
        delays = [resilience.backoff_seconds(attempt, None, rng) for _ in range(300)]
        assert 0 <= min(delays) < cap * 0.1 and cap * 0.9 < max(delays) <= cap
    assert resilience.backoff_seconds(1, 4.0, rng) == 4.0


async def test_non_retryable_errors_are_not_retried(ai):
    ai.add_fault(Fault("status", status=401), times=1, api="openai")
    response = await gateway.generate(ask())
    assert ai.count("openai") == 1
    assert response.provider == "anthropic" and response.fallback_used and response.attempts == 2


@pytest.mark.parametrize(
    "fault",
    [
        Fault("status", status=429, retry_after="0"),
        Fault("status", status=500),
        Fault("status", status=503),
        Fault("status", status=401),
        Fault("hang"),
        Fault("slow_first_byte", delay=3),
        Fault("drop_mid_stream"),
        Fault("malformed_chunk"),
        Fault("stream_error"),
    ],
)
async def test_fallback_to_the_next_provider_on_each_fault(ai, settings, fault):
    settings.AI_TIMEOUT_SECONDS = 0.5
    ai.add_fault(fault, times=10, api="openai")
    response = await gateway.generate(ask())
    assert response.provider == "anthropic" and response.fallback_used and not response.degraded
    assert response.text == ai.reply_text


async def test_every_provider_failing_degrades_to_builtin(ai):
    ai.add_fault(Fault("status", status=500), times=50)
    response = await gateway.generate(ask(context={"creator": {"display_name": "Luna", "niche": "cosplay"}}))
    assert response.provider == "builtin" and response.degraded and response.text
    assert response.cost_usd == 0


async def test_degradation_prefers_a_cached_answer(ai):
    first = await gateway.generate(ask(temperature=0))
    ai.add_fault(Fault("status", status=500), times=50)
    await resilience.cache_set(
        resilience.cache_key(ask(temperature=0.9), resilience.request_fingerprint(ask(temperature=0.9))), first
    )
    degraded = await gateway.generate(ask(temperature=0.9))
    assert degraded.degraded and degraded.cache_hit and degraded.text == first.text


async def test_circuit_breaker_opens_half_opens_and_closes(ai, settings):
    settings.AI_MAX_ATTEMPTS = 1
    ai.add_fault(Fault("status", status=500), times=3, api="openai")
    for _ in range(3):
        assert (await gateway.generate(ask())).provider == "anthropic"
    assert (await resilience.breaker.state("openai"))["state"] == "open"
    calls = ai.count("openai")
    assert (await gateway.generate(ask())).provider == "anthropic"
    assert ai.count("openai") == calls  # open: openai is not called at all
    await asyncio.sleep(0.7)
    assert (await resilience.breaker.state("openai"))["state"] == "half_open"
    response = await gateway.generate(ask())  # the probe
    assert response.provider == "openai" and ai.count("openai") == calls + 1
    assert (await resilience.breaker.state("openai"))["state"] == "closed"


async def test_failed_half_open_probe_reopens(ai, settings):
    settings.AI_MAX_ATTEMPTS = 1
    ai.add_fault(Fault("status", status=500), times=4, api="openai")
    for _ in range(3):
        await gateway.generate(ask())
    await asyncio.sleep(0.7)
    await gateway.generate(ask())  # probe fails
    assert (await resilience.breaker.state("openai"))["state"] == "open"


async def test_breaker_trips_on_failure_rate(ai, settings):
    settings.AI_MAX_ATTEMPTS = 1
    settings.AI_BREAKER = {**settings.AI_BREAKER, "consecutive_failures": 100, "min_calls": 10, "failure_rate": 0.5}
    for index in range(12):
        if index % 2 == 0:
            ai.add_fault(Fault("status", status=503), api="openai")
        await gateway.generate(ask(f"question {index}"))
    assert (await resilience.breaker.state("openai"))["state"] == "open"


async def test_cache_hits_and_isolation_between_agencies(ai):
    from tests.accounts.factories import AgencyFactory

    one, other = await sync_to_async(AgencyFactory.create_batch)(2)
    first = await gateway.generate(ask(temperature=0, agency_id=one.pk))
    second = await gateway.generate(ask(temperature=0, agency_id=one.pk))
    assert second.cache_hit and second.text == first.text and second.cost_usd == 0
    assert ai.count() == 1
    await gateway.generate(ask(temperature=0, agency_id=other.pk))
    assert ai.count() == 2  # another agency never sees this agency's cached answer
    await gateway.generate(ask(temperature=0.8))
    await gateway.generate(ask(temperature=0.8))
    assert ai.count() == 4  # sampled answers are not cached unless asked
    await gateway.generate(ask(temperature=0.8, cache=True, user_id=1))
    await gateway.generate(ask(temperature=0.8, cache=True, user_id=2))
    assert ai.count() == 5


async def test_streams_are_cached_only_when_their_answer_may_be(ai):
    """A deterministic stream (temperature 0) stores its answer and the same stream is then answered
    from the cache; a sampled stream is neither stored nor answered from it."""
    first = await collect(ask(temperature=0))
    second = await collect(ask(temperature=0))
    assert isinstance(second[-1], StreamComplete) and second[-1].response.cache_hit
    assert "".join(e.text for e in second if isinstance(e, StreamChunk)) == first[-1].response.text
    assert ai.count() == 1
    for _ in range(2):
        sampled = await collect(ask(temperature=0.9))
        assert isinstance(sampled[-1], StreamComplete) and not sampled[-1].response.cache_hit
    assert ai.count() == 3


async def test_coalescing_100_concurrent_identical_requests(ai):
    ai.latency = 0.3
    responses = await asyncio.gather(*[gateway.generate(ask("same question", temperature=0.9)) for _ in range(100)])
    assert ai.count() == 1
    assert {r.text for r in responses} == {ai.reply_text}
    assert sum(r.coalesced for r in responses) == 99
    assert sum(r.cost_usd > 0 for r in responses) == 1  # the upstream call is costed once


async def test_coalesced_waiters_share_the_same_error(ai, settings):
    settings.AI_MAX_ATTEMPTS = 1
    ai.latency = 0.2
    ai.add_fault(Fault("status", status=400), times=10)
    results = await asyncio.gather(*[gateway.generate(ask("bad one")) for _ in range(20)], return_exceptions=True)
    assert ai.count() == 1
    assert all(isinstance(r, AIError) and r.kind == ErrorKind.INVALID_REQUEST for r in results)


@pytest.mark.parametrize(
    "request_, message",
    [
        (AIRequest(feature="test.chat", messages=[]), "The prompt is empty"),
        (ask("   "), "no user message with text"),
        (ask("x" * 60_000), "The prompt is too long"),
        (ask(provider="watson"), "Unknown or unconfigured AI provider"),
        (ask(model="gpt-9-imaginary"), "No configured provider serves the model"),
        (ask(max_tokens=0), "max_tokens must be between"),
        (ask(temperature=3), "temperature must be between"),
        (ask(timeout=-1), "timeout must be between"),
        (AIRequest(feature="Bad Feature!", messages=[Message("user", "hi")]), "feature name"),
        (AIRequest(feature="t", messages=[Message("robot", "hi")]), "Unknown message role"),
    ],
)
async def test_bad_input_is_invalid_request_without_upstream_call(ai, request_, message):
    with pytest.raises(AIError) as caught:
        await gateway.generate(request_)
    assert caught.value.kind == ErrorKind.INVALID_REQUEST and message in caught.value.message
    assert ai.count() == 0


async def test_streaming_chunks_then_complete_with_cost(ai):
    events = await collect(ask())
    chunks = [e.text for e in events if isinstance(e, StreamChunk)]
    assert len(chunks) > 1 and "".join(chunks) == ai.reply_text
    complete = events[-1]
    assert isinstance(complete, StreamComplete) and complete.response.ttft_ms is not None
    await ledger.aflush()
    row = await AIRequestLog.objects.aget()
    assert row.streamed and row.ttft_ms is not None and row.cost_usd == complete.response.cost_usd


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_streamed_cost_equals_non_streamed_cost(ai, provider):
    ai.usage_override = {"input_tokens": 1200, "output_tokens": 345, "cached_input_tokens": 200}
    plain = await gateway.generate(ask(provider=provider))
    streamed = (await collect(ask(provider=provider)))[-1].response
    # Anthropic reports cache reads apart from input_tokens; the gateway counts them inside.
    expected_input = 1200 if provider == "openai" else 1400
    assert plain.usage == streamed.usage == Usage(expected_input, 345, 200)
    assert plain.cost_usd == streamed.cost_usd > 0


@pytest.mark.parametrize(
    "fault", [Fault("status", status=503), Fault("drop_mid_stream", after_chunks=0), Fault("hang")]
)
async def test_stream_falls_back_when_it_fails_before_the_first_token(ai, settings, fault):
    settings.AI_TIMEOUT_SECONDS = 0.5
    ai.add_fault(fault, times=10, api="openai")
    events = await collect(ask())
    assert isinstance(events[-1], StreamComplete)
    assert events[-1].response.provider == "anthropic" and events[-1].response.fallback_used
    assert "".join(e.text for e in events if isinstance(e, StreamChunk)) == ai.reply_text


@pytest.mark.parametrize("fault", [Fault("drop_mid_stream", after_chunks=2), Fault("malformed_chunk", after_chunks=2)])
async def test_stream_failing_midway_keeps_the_partial_text(ai, fault):
    ai.add_fault(fault, times=1, api="openai")
    events = await collect(ask())
    error = events[-1]
    assert isinstance(error, StreamError)
    received = "".join(e.text for e in events if isinstance(e, StreamChunk))
    assert error.partial_text == received and 0 < len(received) < len(ai.reply_text)
    assert ai.count("anthropic") == 0


async def test_closing_a_stream_stops_the_upstream_call(ai):
    ai.reply_text = "word " * 400
    ai.chunk_size = 5
    stream = gateway.stream(ask())
    first = await stream.__anext__()
    assert isinstance(first, StreamChunk)
    await stream.aclose()
    await ledger.aflush()
    row = await AIRequestLog.objects.aget()
    assert row.error_kind == "CANCELLED"


async def test_rate_limit_per_user_and_agency(ai, settings):
    from tests.ai.test_processes import _not_at_the_end_of_an_hour

    # An hour window (not a minute one): a test that straddles the window's end would be refilled.
    settings.AI_RATE_LIMITS = {**settings.AI_RATE_LIMITS, "openai": {"minute": 1000, "hour": 3, "day": 10000}}
    _not_at_the_end_of_an_hour()
    for index in range(3):
        await gateway.generate(ask(f"q{index}", user_id=5, agency_id=None))
    with pytest.raises(AIError) as caught:
        await gateway.generate(ask("q4", user_id=5))
    assert caught.value.kind == ErrorKind.RATE_LIMIT and 0 < caught.value.retry_after <= 3600
    assert ai.count() == 3
    await sync_to_async(metrics.flush)()  # the refusal reaches monitoring (Huntaze/RateLimiter)
    refused = await MetricSample.objects.aget(name="ratelimit.refused")
    assert refused.count == 1 and refused.dimensions == {"scope": "ai", "provider": "openai"}
    await gateway.generate(ask("q5", user_id=6))  # another user has their own window
    assert ai.count() == 4


def test_sync_wrapper_for_tasks(ai):
    response = gateway.generate_sync(ask("from a task"))
    assert response.provider == "openai" and response.text == ai.reply_text


def test_sync_calls_close_the_http_clients_of_their_own_loop(ai, caplog):
    # A Celery task's call runs on a loop of its own; the SDK clients made for it must be closed
    # with it, or every task leaves a connection to the provider open (a file descriptor each)
    # and an "Unclosed client session" error in the log.
    gc.collect()  # what earlier tests left is not this test's concern
    caplog.set_level(logging.ERROR, logger="asyncio")

    def open_files() -> int:
        gc.collect()
        return len(os.listdir("/proc/self/fd"))

    gateway.generate_sync(ask("warm-up", cache=False))
    before = open_files()
    for index in range(5):
        gateway.generate_sync(ask(f"task {index}", cache=False))
    assert ai.count() == 6
    assert open_files() - before < 5
    assert "Unclosed" not in caplog.text


async def test_api_keys_never_reach_the_logs(ai, caplog):
    caplog.set_level(logging.DEBUG)
    ai.add_fault(Fault("status", status=401), times=5)
    await gateway.generate(ask())
    await ledger.aflush()
    assert OPENAI_KEY not in caplog.text
    rows = await sync_to_async(list)(AIRequestLog.objects.values_list("provider", "model", "error_kind"))
    assert OPENAI_KEY not in str(rows)


async def test_ledger_keeps_rows_whose_creator_was_deleted_meanwhile(ai):
    from tests.accounts.factories import CreatorFactory

    creator = await sync_to_async(CreatorFactory)()
    await gateway.generate(ask(agency_id=creator.agency_id, creator_id=creator.pk))
    await creator.adelete()
    assert await ledger.aflush() == 1
    row = await AIRequestLog.objects.aget()
    assert row.agency_id == creator.agency_id and row.creator_id is None


async def test_azure_openai_deployment_stream_and_plain(ai, settings):
    from apps.ai.registry import registry

    settings.AZURE_OPENAI_API_KEY = "azure-test-key-0123456789"
    settings.AZURE_OPENAI_ENDPOINT = ai.azure_endpoint
    settings.AZURE_OPENAI_API_VERSION = "2024-10-21"
    settings.AZURE_OPENAI_DEPLOYMENTS = ["my-gpt-deployment"]
    settings.DEFAULT_AI_PROVIDER = "azure"
    registry.reset()
    response = await gateway.generate(ask())
    assert (response.provider, response.text) == ("azure", ai.reply_text)
    recorded = ai.requests[-1]
    assert recorded.path == "/openai/deployments/my-gpt-deployment/chat/completions"
    assert recorded.query.get("api-version") == "2024-10-21"
    events = await collect(ask("stream from azure"))
    assert isinstance(events[-1], StreamComplete) and events[-1].response.provider == "azure"
    assert "".join(e.text for e in events if isinstance(e, StreamChunk)) == ai.reply_text


async def test_openai_compatible_server_by_base_url(ai, settings):
    from apps.ai.registry import registry

    settings.OPENAI_API_KEY = ""
    settings.ANTHROPIC_API_KEY = ""
    settings.OPENAI_COMPATIBLE_BASE_URL = ai.openai_base_url
    settings.OPENAI_COMPATIBLE_MODELS = ["llama3.1:8b"]
    registry.reset()
    response = await gateway.generate(ask())
    assert (response.provider, response.model) == ("openai_compatible", "llama3.1:8b")
    assert ai.requests[-1].json["max_tokens"] == 512  # compatible servers get max_tokens
    assert response.cost_usd == 0  # self-hosted models are not in the price table


async def test_routing_by_cost_and_by_latency(ai, settings):
    from apps.ai import router
    from apps.ai.registry import registry

    settings.OPENAI_MODELS = ["gpt-4o"]
    settings.ANTHROPIC_MODELS = ["claude-haiku-4-5"]
    settings.AI_ROUTING = "cost"
    registry.reset()
    assert (await gateway.generate(ask("by cost"))).model == "claude-haiku-4-5"  # $1+$5 < $2.5+$10
    settings.AI_ROUTING = "latency"
    router.observe_latency("openai", "gpt-4o", 900.0)
    router.observe_latency("anthropic", "claude-haiku-4-5", 50.0)
    assert (await gateway.generate(ask("by latency"))).provider == "anthropic"
    router.observe_latency("anthropic", "claude-haiku-4-5", 5000.0)
    router.observe_latency("anthropic", "claude-haiku-4-5", 5000.0)
    router.observe_latency("anthropic", "claude-haiku-4-5", 5000.0)
    router.observe_latency("anthropic", "claude-haiku-4-5", 5000.0)
    assert (await gateway.generate(ask("by latency again"))).provider == "openai"


async def test_per_feature_model_choice(ai, settings):
    settings.OPENAI_MODELS = ["gpt-4o-mini", "gpt-4o"]
    settings.AI_FEATURE_MODELS = {"test.chat": "gpt-4o"}
    from apps.ai.registry import registry

    registry.reset()
    assert (await gateway.generate(ask())).model == "gpt-4o"
    assert ai.requests[-1].json["model"] == "gpt-4o"


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_absurd_usage_from_a_provider_is_counted_within_the_ledger_columns(ai, provider):
    # 3e9 is beyond PostgreSQL's integer, 12.0 is not an integer to COPY, -3 breaks the CHECK:
    # each of these once stopped every ledger write of the process (or dropped the row).
    ai.usage_override = {"input_tokens": 3_000_000_000, "output_tokens": 12.0, "cached_input_tokens": -3}
    response = await gateway.generate(ask(provider=provider))
    assert response.usage == Usage(2**31 - 1, 12, 0) and response.cost_usd > 0
    assert await ledger.aflush() == 1
    row = await AIRequestLog.objects.aget()
    assert (row.input_tokens, row.output_tokens, row.cached_input_tokens) == (2**31 - 1, 12, 0)
    assert row.cost_usd == response.cost_usd and ledger.pending() == 0


async def test_a_nul_in_the_served_model_name_is_left_out_of_the_ledger(ai, settings):
    settings.OPENAI_MODELS = ["gpt-4o-mini\x00evil"]
    response = await gateway.generate(ask())
    assert response.model == "gpt-4o-minievil"
    assert await ledger.aflush() == 1
    assert (await AIRequestLog.objects.aget()).model == "gpt-4o-minievil"


def test_a_row_the_database_refuses_is_dropped_and_the_rest_written(world, caplog):
    from decimal import Decimal

    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite stores any number, so no column refuses the oversized cost")
    # Rows as the gateway records them (every column without a default given).
    good = {"agency_id": world.agency.pk, "feature": "good", "provider": "openai", "model": "gpt-4o-mini",
            "price_version": "", "error_kind": "", "request_id": ""}  # fmt: skip
    # A cost beyond the column's 14 digits: PostgreSQL refuses the whole batch (DataError).
    ledger.record(**good)
    ledger.record(**{**good, "feature": "bad", "cost_usd": Decimal("10000000")})
    ledger.record(**good)
    with caplog.at_level(logging.WARNING, logger="apps.ai.ledger"):
        assert ledger.flush() == 3
    assert sorted(AIRequestLog.objects.values_list("feature", flat=True)) == ["good", "good"]
    assert "dropped an AI ledger row (feature bad) the database refused: numeric field overflow" in caplog.text
    assert ledger.pending() == 0
    ledger.record(**good)
    assert ledger.flush() == 1 and AIRequestLog.objects.count() == 3
