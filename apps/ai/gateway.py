"""The AI gateway: the one entry point to every model call in Huntaze.

    response = await generate(AIRequest(feature="inbox.reply", messages=[...], agency_id=...))
    async for event in stream(request): ...        # StreamChunk…, then StreamComplete | StreamError
    response = generate_sync(request)              # for Celery tasks and commands

Pipeline: validation → rate limits (per user, per agency) → budget checks (AI_BUDGET_CHECKS) →
response cache → coalescing of identical in-flight requests → routing → per-provider circuit
breaker → call with timeout and retries (full-jitter backoff, Retry-After honoured, retryable
kinds only; a stream's every wait for the provider's next event bounded by the timeout) →
fallback along the chain (streams: until the first token) → degradation to a cached answer or
the built-in provider, marked ``degraded`` → ledger row.

A budget check may answer a *settle* callable (sync or async, taking the call's cost in USD as
a Decimal): the gateway calls it exactly once when the call is over, with the cost written to
the ledger row (0 for errors, cache hits and coalesced followers), streams included, so a check
can hold a reservation for the call's duration. A stream cut short after its first token (the
client closed it, or the provider failed mid-answer) reports no usage; it is charged an estimate
(``interrupted_usage``) in its ledger row and its settle alike. Settles run to their end even if
the caller is cancelled meanwhile. A check that refuses raises AIError; settles already taken by
earlier checks are then called with 0.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from decimal import Decimal

from asgiref.sync import async_to_sync
from django.conf import settings
from django.utils.module_loading import import_string

from apps.ai import resilience
from apps.ai.ledger import ledger
from apps.ai.pricing import cost_usd, price_version
from apps.ai.registry import registry
from apps.ai.router import Route, observe_latency, plan
from apps.ai.types import (
    AIError,
    AIRequest,
    AIResponse,
    ErrorKind,
    ProviderResult,
    StreamChunk,
    StreamComplete,
    StreamError,
    StreamEvent,
    Usage,
)
from apps.core.logging import get_request_id
from apps.core.metrics import emit
from apps.core.shared import uninterruptible

logger = logging.getLogger(__name__)

FEATURE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,59}$")
ROLES = {"system", "user", "assistant"}
STOP_KINDS = {ErrorKind.INVALID_REQUEST, ErrorKind.CONTENT_FILTER}
BREAKER_KINDS = {
    ErrorKind.SERVER_ERROR,
    ErrorKind.NETWORK_ERROR,
    ErrorKind.TIMEOUT,
    ErrorKind.RATE_LIMIT,
    ErrorKind.UNKNOWN,
}


def _invalid(message: str) -> AIError:
    return AIError(ErrorKind.INVALID_REQUEST, message)


def validate(request: AIRequest) -> None:
    """Refuse bad requests before any upstream call, with a message a person can act on."""
    if not isinstance(request.feature, str) or not FEATURE_NAME.match(request.feature):
        raise _invalid("The feature name must be 1 to 60 lowercase letters, digits, dots, dashes or underscores.")
    if not request.messages:
        raise _invalid("The prompt is empty: give at least one message.")
    total = len(request.system or "")
    for message in request.messages:
        if message.role not in ROLES or not isinstance(message.content, str):
            raise _invalid(f"Unknown message role “{message.role}”.")
        total += len(message.content)
    if not any(m.role == "user" and m.content.strip() for m in request.messages):
        raise _invalid("The prompt is empty: there is no user message with text.")
    if total > settings.AI_MAX_INPUT_CHARS:
        raise _invalid(f"The prompt is too long ({total:,} characters; the limit is {settings.AI_MAX_INPUT_CHARS:,}).")
    if not 1 <= request.max_tokens <= settings.AI_MAX_OUTPUT_TOKENS:
        raise _invalid(f"max_tokens must be between 1 and {settings.AI_MAX_OUTPUT_TOKENS}.")
    if not 0 <= request.temperature <= 2:
        raise _invalid("temperature must be between 0 and 2.")
    if request.timeout is not None and not 0 < request.timeout <= 300:
        raise _invalid("timeout must be between 0 and 300 seconds.")


Settle = Callable[[Decimal], object]


class _Settlement:
    """The settle callables the budget checks answered for one call, called once with its cost.
    ``interrupted`` is what a stream cut short has cost (set when it ends without a final
    message after its first token): what the settle is called with when no final cost comes."""

    def __init__(self, settles: list[Settle] | None = None) -> None:
        self.settles = settles or []
        self.interrupted = Decimal(0)

    async def __call__(self, cost: Decimal) -> None:
        if self.settles:
            await uninterruptible(self._settle(cost))

    async def _settle(self, cost: Decimal) -> None:
        settles, self.settles = self.settles, []
        for settle in settles:
            try:
                result = settle(cost)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                logger.exception("an AI budget settle failed")


async def _budget_checks(request: AIRequest) -> _Settlement:
    settlement = _Settlement()
    try:
        for path in settings.AI_BUDGET_CHECKS:
            check = import_string(path)
            result = check(request)
            if asyncio.iscoroutine(result):
                result = await result
            if callable(result):
                settlement.settles.append(result)
    except BaseException:
        await settlement(Decimal(0))
        raise
    return settlement


def _timeout(request: AIRequest) -> float:
    return request.timeout or settings.AI_TIMEOUT_SECONDS


# Tokens of an interrupted stream, estimated from UTF-8 bytes: English runs about 4 bytes a token,
# other scripts fewer; 3 overstates a little for English and stays close elsewhere.
ESTIMATE_BYTES_PER_TOKEN = 3


def interrupted_usage(request: AIRequest, model: str, parts: list[str]) -> tuple[Usage, Decimal]:
    """The estimated usage and cost of a stream cut short after emitting ``parts``: providers
    report usage only in the final message, yet they bill the prompt and what they generated.
    The whole prompt plus the text emitted so far, at ESTIMATE_BYTES_PER_TOKEN, priced like any
    call of ``model``. Never above the request's cost bound (every prompt byte a token, the whole
    ``max_tokens`` answer, ``request_cost_bound``), which budgets rely on. Nothing emitted: nothing
    charged."""
    if not parts:
        return Usage(), Decimal(0)
    prompt_bytes = len((request.system or "").encode()) + sum(len(m.content.encode()) for m in request.messages)
    output_bytes = sum(len(part.encode()) for part in parts)
    usage = Usage(
        input_tokens=math.ceil(prompt_bytes / ESTIMATE_BYTES_PER_TOKEN),
        output_tokens=min(request.max_tokens, math.ceil(output_bytes / ESTIMATE_BYTES_PER_TOKEN)),
    )
    return usage, cost_usd(model, usage)


async def request_cost_bound(request: AIRequest) -> Decimal:
    """An upper bound of what ``request`` can cost in USD, known before any provider is asked:
    every prompt byte a token, the whole ``max_tokens`` answer, at the dearest model its route may
    reach. What the budget checks reserve at admission (apps/monitoring/budgets.py, the plan's AI
    credits in apps/billing/entitlements.py), so a month cannot end more than that past a limit."""
    prompt_bytes = len((request.system or "").encode()) + sum(len(m.content.encode()) for m in request.messages)
    usage = Usage(input_tokens=prompt_bytes, output_tokens=request.max_tokens)
    routes = plan(request, await registry.providers_for(request.agency_id))
    return max((cost_usd(route.model, usage) for route in routes), default=Decimal(0))


def _record(request: AIRequest, *, response: AIResponse | None = None, error: AIError | None = None,
            streamed: bool = False, latency_ms: float = 0.0, provider: str = "", model: str = "",
            attempts: int = 0, extra_error: str = "", usage: Usage | None = None,
            cost: Decimal | None = None) -> None:  # fmt: skip
    """One ledger row. Errors cost 0, except a stream cut short: its estimated ``usage``/``cost``."""
    row = {
        "agency_id": request.agency_id,
        "creator_id": request.creator_id,
        "user_id": request.user_id,
        "feature": request.feature[:60],
        "streamed": streamed,
        "request_id": get_request_id()[:64],
        "price_version": price_version(),
    }
    if response is not None:
        row.update(
            provider=response.provider, model=response.model[:120], input_tokens=response.usage.input_tokens,
            cached_input_tokens=response.usage.cached_input_tokens, output_tokens=response.usage.output_tokens,
            cost_usd=response.cost_usd, latency_ms=response.latency_ms, ttft_ms=response.ttft_ms,
            cache_hit=response.cache_hit, coalesced=response.coalesced, attempts=response.attempts,
            fallback_used=response.fallback_used, degraded=response.degraded, error_kind=extra_error,
        )  # fmt: skip
    else:
        row.update(
            provider=(error.provider if error else provider)[:60], model=(error.model if error else model)[:120],
            latency_ms=latency_ms, attempts=attempts, error_kind=(error.kind.value if error else extra_error),
        )  # fmt: skip
        if cost:
            row.update(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, cost_usd=cost)
    ledger.record(**row)
    emit("ai.request", row["latency_ms"], "Milliseconds", {  # docs/metrics.md
        "provider": row["provider"] or "none", "feature": row["feature"],
        "outcome": "ok" if response is not None else ("cancelled" if row["error_kind"] == "CANCELLED" else "error"),
        "error_kind": row["error_kind"],
    })  # fmt: skip


def _response(route: Route, result: ProviderResult, *, started: float, attempts: int, index: int,
              ttft_ms: float | None = None, degraded: bool = False) -> AIResponse:  # fmt: skip
    latency_ms = (time.perf_counter() - started) * 1000
    # The served model's name and the usage are the provider's word: no NUL (PostgreSQL text
    # refuses it) and token counts the ledger's columns can hold, before anything is priced or kept.
    model = (result.model or route.model).replace("\x00", "")
    usage = result.usage.counted()
    return AIResponse(
        text=result.text,
        provider=route.provider.name,
        model=model,
        usage=usage,
        cost_usd=cost_usd(model, usage),
        latency_ms=latency_ms,
        ttft_ms=ttft_ms,
        attempts=attempts,
        fallback_used=index > 0,
        degraded=degraded or (route.provider.kind == "builtin" and index > 0),
        finish_reason=result.finish_reason,
    )


async def _prepare(
    request: AIRequest, settlement: _Settlement, *, streamed: bool = False
) -> tuple[list[Route], str, AIResponse | None]:
    """Validate and route; answer from the cache when allowed; else count the request against
    the rate limits and budgets (their settles go into ``settlement``). Cache hits reach no
    provider, so they are not counted. The key ("" when unused) is the response cache's, which
    ``generate`` also coalesces on; a stream uses it only when its answer may be cached, so an
    uncached stream skips the fingerprint (JSON and SHA-256 of the whole prompt, persona included)."""
    validate(request)
    routes = plan(request, await registry.providers_for(request.agency_id))
    caching = resilience.should_cache(request)
    key = resilience.cache_key(request, resilience.request_fingerprint(request)) if caching or not streamed else ""
    if caching:
        cached = await resilience.cache_get(key)
        if cached is not None:
            return routes, key, cached
    await resilience.check_rate_limits(request, routes[0].provider.kind)
    settlement.settles = (await _budget_checks(request)).settles
    return routes, key, None


async def _call_chain(request: AIRequest, routes: list[Route], key: str, started: float) -> AIResponse:
    attempts = 0
    last_error: AIError | None = None
    for index, route in enumerate(routes):
        provider = route.provider
        is_builtin = provider.kind == "builtin"
        if is_builtin and index > 0:
            cached = await resilience.cache_get(key)
            if cached is not None:
                return replace(cached, cache_hit=True, degraded=True, cost_usd=cached.cost_usd * 0, attempts=attempts)
        under = resilience.CLOSED if is_builtin else await resilience.breaker.allow(provider.name)
        if under is None:
            last_error = AIError(ErrorKind.SERVER_ERROR, f"{provider.name} is paused by its circuit breaker.",
                                 provider=provider.name, model=route.model)  # fmt: skip
            continue

        def count(_: int) -> None:
            nonlocal attempts
            attempts += 1

        timeout = _timeout(request)
        try:
            result = await resilience.with_retries(
                lambda provider=provider, route=route, timeout=timeout: provider.complete(
                    request, route.model, timeout
                ),
                count,
                timeout=timeout + 1,
            )
        except TimeoutError:
            last_error = AIError(
                ErrorKind.TIMEOUT,
                "The model provider did not answer in time.",
                provider=provider.name,
                model=route.model,
            )
        except AIError as error:
            last_error = error
        else:
            if not is_builtin:
                await resilience.breaker.record_success(provider.name, under)
            response = _response(route, result, started=started, attempts=attempts, index=index)
            observe_latency(provider.name, route.model, response.latency_ms)
            return response
        if not is_builtin and last_error.kind in BREAKER_KINDS:
            await resilience.breaker.record_failure(provider.name, under)
        if last_error.kind in STOP_KINDS:
            raise last_error
    raise last_error or AIError(ErrorKind.UNKNOWN, "No AI provider is available.")


async def generate(request: AIRequest) -> AIResponse:
    """One complete answer. Raises AIError (already written to the ledger)."""
    settlement = _Settlement()
    cost = Decimal(0)
    try:
        response = await _generate(request, settlement)
        cost = response.cost_usd
        return response
    finally:
        await settlement(cost)


async def _generate(request: AIRequest, settlement: _Settlement) -> AIResponse:
    started = time.perf_counter()
    try:
        routes, key, cached = await _prepare(request, settlement)
        if cached is not None:
            latency = (time.perf_counter() - started) * 1000
            response = replace(cached, cache_hit=True, cost_usd=cached.cost_usd * 0, latency_ms=latency, attempts=0)
            _record(request, response=response)
            return response
        use_cache = resilience.should_cache(request)
        response, coalesced = await resilience.coalesce(key, lambda: _call_chain(request, routes, key, started))
    except AIError as error:
        _record(request, error=error, latency_ms=(time.perf_counter() - started) * 1000)
        raise
    if coalesced:
        # The upstream call was made (and costed) once, by the request that started it.
        response = replace(response, coalesced=True, cost_usd=response.cost_usd * 0,
                           latency_ms=(time.perf_counter() - started) * 1000)  # fmt: skip
    else:
        if use_cache and not response.degraded:
            await resilience.cache_set(key, response)
    _record(request, response=response)
    return response


def generate_sync(request: AIRequest) -> AIResponse:
    """generate() for synchronous code: Celery tasks, management commands, sync views. Where
    async_to_sync runs a loop of its own, the SDK clients made for it close with that loop."""
    return async_to_sync(generate)(request)


async def stream(request: AIRequest) -> AsyncIterator[StreamEvent]:
    """Stream an answer: StreamChunk events, then one StreamComplete or one StreamError.

    Fallback and retries happen only before the first token; after it, a failure ends the
    stream with StreamError carrying the text received so far. Closing the iterator (the
    client cancelled) closes the upstream stream. Budget settles run before the final event is
    handed over (a caller may stop reading there), or when the stream is closed early; a stream
    cut short after its first token settles its estimated cost (``interrupted_usage``).
    """
    settlement = _Settlement()
    events = _stream(request, settlement)
    try:
        async for event in events:
            if isinstance(event, StreamComplete):
                await settlement(event.response.cost_usd)
            elif isinstance(event, StreamError):
                await settlement(settlement.interrupted)
            yield event
    finally:
        try:
            await events.aclose()
        finally:
            await settlement(settlement.interrupted)


class _StallTimeout:
    """``asyncio.timeout`` for a wait that repeats (each of a stream's waits for its next event),
    at the cost of two attribute writes a wait: ``waiting()`` notes the time, ``idle()`` clears it,
    and one timer, re-armed only when it fires before its wait is due, cancels the task once a wait
    has lasted ``seconds``; the cancellation leaves the block as TimeoutError, as asyncio's does.
    ``asyncio.timeout``'s ``reschedule`` made and cancelled a timer handle at every chunk, which
    also leaves a cancelled handle in the loop's heap: 2.3-2.8 us a chunk against 0.1-0.3 here, in
    one process (docs/benchmarks.md, studio streaming)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.since: float | None = None
        self.expired = False
        self._handle: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> _StallTimeout:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._cancelling = self._task.cancelling()
        return self

    async def __aexit__(self, exc_type, exc, traceback) -> None:
        self.since = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self.expired and self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc  # our cancellation, and no one else's since

    def waiting(self) -> None:
        self.since = self._loop.time()
        if self._handle is None and not self.expired:
            self._handle = self._loop.call_at(self.since + self.seconds, self._check)

    def idle(self) -> None:
        self.since = None

    def _check(self) -> None:
        self._handle = None
        if self.since is None:
            return  # not waiting now; the next wait arms the timer again
        due = self.since + self.seconds
        if self._loop.time() >= due:
            self.expired = True
            self._task.cancel()
        else:
            self._handle = self._loop.call_at(due, self._check)


async def _stream(request: AIRequest, settlement: _Settlement) -> AsyncIterator[StreamEvent]:
    started = time.perf_counter()
    try:
        routes, key, cached = await _prepare(request, settlement, streamed=True)
    except AIError as error:
        _record(request, error=error, streamed=True, latency_ms=(time.perf_counter() - started) * 1000)
        yield StreamError(error)
        return
    if cached is not None:
        response = replace(cached, cache_hit=True, cost_usd=cached.cost_usd * 0, attempts=0,
                           latency_ms=(time.perf_counter() - started) * 1000, ttft_ms=None)  # fmt: skip
        _record(request, response=response, streamed=True)
        yield StreamChunk(response.text)
        yield StreamComplete(response)
        return
    use_cache = resilience.should_cache(request)

    attempts = 0
    last_error: AIError | None = None
    for index, route in enumerate(routes):
        provider = route.provider
        is_builtin = provider.kind == "builtin"
        under = resilience.CLOSED if is_builtin else await resilience.breaker.allow(provider.name)
        if under is None:
            last_error = AIError(ErrorKind.SERVER_ERROR, f"{provider.name} is paused by its circuit breaker.",
                                 provider=provider.name, model=route.model)  # fmt: skip
            continue
        for attempt in range(1, max(1, settings.AI_MAX_ATTEMPTS) + 1):
            attempts += 1
            parts: list[str] = []
            ttft_ms: float | None = None
            final: ProviderResult | None = None
            timeout = _timeout(request)
            upstream = provider.stream(request, route.model, timeout)
            try:
                # Each wait for the provider's next event is bounded by the request's timeout, so a
                # provider that stalls mid-answer ends this stream alone. The timer is disarmed
                # while the caller holds a chunk: a slow reader is not the provider's stall.
                async with _StallTimeout(timeout) as stall:
                    while True:
                        stall.waiting()
                        try:
                            item = await anext(upstream)
                        except StopAsyncIteration:
                            break
                        stall.idle()
                        if isinstance(item, str):
                            if ttft_ms is None:
                                ttft_ms = (time.perf_counter() - started) * 1000
                            parts.append(item)
                            yield StreamChunk(item)
                        else:
                            final = item
            except TimeoutError:
                last_error = AIError(ErrorKind.TIMEOUT, "The model provider stopped sending before the answer was "
                                     "complete.", provider=provider.name, model=route.model)  # fmt: skip
            except AIError as error:
                last_error = error
            except (GeneratorExit, asyncio.CancelledError):
                usage, settlement.interrupted = interrupted_usage(request, route.model, parts)
                try:
                    await upstream.aclose()
                finally:
                    _record(request, streamed=True, provider=provider.name, model=route.model, attempts=attempts,
                            latency_ms=(time.perf_counter() - started) * 1000, extra_error="CANCELLED",
                            usage=usage, cost=settlement.interrupted)  # fmt: skip
                raise
            finally:
                await upstream.aclose()
            if final is not None:
                if not is_builtin:
                    await resilience.breaker.record_success(provider.name, under)
                response = _response(route, final, started=started, attempts=attempts, index=index, ttft_ms=ttft_ms)
                observe_latency(provider.name, route.model, response.latency_ms)
                if use_cache and not response.degraded:
                    await resilience.cache_set(key, response)
                _record(request, response=response, streamed=True)
                yield StreamComplete(response)
                return
            if last_error is None:
                last_error = AIError(ErrorKind.SERVER_ERROR, "The stream ended without a final message.",
                                     provider=provider.name, model=route.model)  # fmt: skip
            if parts:
                if not is_builtin and last_error.kind in BREAKER_KINDS:
                    await resilience.breaker.record_failure(provider.name, under)
                usage, settlement.interrupted = interrupted_usage(request, route.model, parts)
                _record(request, error=last_error, streamed=True, attempts=attempts,
                        latency_ms=(time.perf_counter() - started) * 1000, usage=usage,
                        cost=settlement.interrupted)  # fmt: skip
                yield StreamError(last_error, partial_text="".join(parts))
                return
            if not resilience._retryable(last_error) or attempt == settings.AI_MAX_ATTEMPTS:
                break
            await asyncio.sleep(resilience.backoff_seconds(attempt, last_error.retry_after))
        if not is_builtin and last_error is not None and last_error.kind in BREAKER_KINDS:
            await resilience.breaker.record_failure(provider.name, under)
        if last_error is not None and last_error.kind in STOP_KINDS:
            break
    error = last_error or AIError(ErrorKind.UNKNOWN, "No AI provider is available.")
    _record(request, error=error, streamed=True, attempts=attempts, latency_ms=(time.perf_counter() - started) * 1000)
    yield StreamError(error)
