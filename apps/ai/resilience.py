"""Resilience for the gateway: rate limits, circuit breaker, response cache, coalescing, retry.

Everything several processes must agree on (limits, breaker state) goes through
apps.core.shared (Redis, or the database in the embedded default). The response cache is
Django's cache. Coalescing is per event loop: identical requests in flight in one process share
one upstream call; across processes the response cache does that job.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.cache import cache
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from apps.ai.types import AIError, AIRequest, AIResponse, ErrorKind, Usage
from apps.core.metrics import emit
from apps.core.shared import LimitCheck, shared_state

WINDOWS = {"minute": 60, "hour": 3600, "day": 86400}

# --- Rate limits -----------------------------------------------------------------------------


async def check_rate_limits(request: AIRequest, provider_kind: str) -> None:
    """Count this request against the user's and the agency's windows, or refuse it."""
    limits = settings.AI_RATE_LIMITS.get(provider_kind) or settings.AI_RATE_LIMITS.get("openai", {})
    scopes = []
    if request.user_id is not None:
        scopes.append(f"ai:{provider_kind}:user:{request.user_id}")
    if request.agency_id is not None:
        scopes.append(f"ai:{provider_kind}:agency:{request.agency_id}")
    checks = [
        LimitCheck(scope, int(limit), WINDOWS[window])
        for scope in scopes
        for window, limit in limits.items()
        if window in WINDOWS
    ]
    if not checks:
        return
    retry_after = await shared_state().hit_limits(checks)
    if retry_after is not None:
        emit("ratelimit.refused", 1, "Count", {"scope": "ai", "provider": provider_kind})  # docs/metrics.md
        raise AIError(
            ErrorKind.RATE_LIMIT,
            f"AI request limit reached; try again in {max(1, round(retry_after))} s.",
            retry_after=retry_after,
            provider=provider_kind,
        )


# --- Circuit breaker -------------------------------------------------------------------------

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
SNAPSHOT_SECONDS = 0.5


class CircuitBreaker:
    """Per-provider breaker with state in shared storage.

    closed → open after N consecutive failures, or a failure rate over the threshold with at
    least ``min_calls`` calls in the window; open → half-open after the cooldown, letting
    ``half_open_probes`` calls through; a probe's success closes it, its failure reopens it.

    The happy path costs no round trip: the state is read from a snapshot refreshed in the
    background every 0.5 s, and successes are counted in-process and added to the shared call
    counter at each refresh. Failures always go to shared storage at once.
    """

    def __init__(self) -> None:
        self._snapshots: dict[str, tuple[float, dict]] = {}
        self._successes: dict[str, int] = {}
        self._refreshing: set[str] = set()
        self._pending: set[asyncio.Task] = set()

    @property
    def config(self) -> dict:
        return settings.AI_BREAKER

    def _bucket(self) -> int:
        return int(time.time() // self.config["window_seconds"])

    async def _load(self, name: str) -> dict:
        successes = self._successes.pop(name, 0)
        if successes:
            await shared_state().incr(
                f"breaker:{name}:calls:{self._bucket()}", ttl=self.config["window_seconds"] * 2, amount=successes
            )
        record = await shared_state().get_record(f"breaker:{name}")
        self._snapshots[name] = (time.monotonic(), record)
        return record

    async def _refresh(self, name: str) -> None:
        try:
            await self._load(name)
        finally:
            self._refreshing.discard(name)

    async def _record(self, name: str, fresh: bool = False) -> dict:
        cached = self._snapshots.get(name)
        if fresh or cached is None:
            return await self._load(name)
        if time.monotonic() - cached[0] >= SNAPSHOT_SECONDS and name not in self._refreshing:
            self._refreshing.add(name)
            self._background(self._refresh(name))
        return cached[1]

    async def state(self, name: str) -> dict:
        record = await self._record(name, fresh=True)
        state = record.get("state", CLOSED)
        if state == OPEN and time.time() - record.get("opened_at", 0) >= self.config["cooldown_seconds"]:
            state = HALF_OPEN
        return {
            "state": state,
            "consecutive_failures": record.get("consecutive", 0),
            "opened_at": record.get("opened_at"),
        }

    async def allow(self, name: str) -> str | None:
        """The state the call runs under ("closed" or "half_open"), or None when it must not run."""
        record = await self._record(name)
        if record.get("state", CLOSED) == CLOSED:
            return CLOSED
        record = await self._record(name, fresh=True)
        if record.get("state", CLOSED) == CLOSED:
            return CLOSED
        opened_at = record.get("opened_at", 0)
        if time.time() - opened_at < self.config["cooldown_seconds"]:
            return None
        probes = await shared_state().incr(
            f"breaker:{name}:probes:{opened_at}", ttl=self.config["cooldown_seconds"] * 4
        )
        return HALF_OPEN if probes <= self.config["half_open_probes"] else None

    async def record_success(self, name: str, under: str) -> None:
        if under == HALF_OPEN:
            await shared_state().delete(f"breaker:{name}")
            self._snapshots.pop(name, None)
            return
        self._successes[name] = self._successes.get(name, 0) + 1
        record = self._snapshots.get(name, (0, {}))[1]
        if record.get("consecutive"):
            await shared_state().set_record(f"breaker:{name}", {"state": CLOSED, "consecutive": 0})
            self._snapshots.pop(name, None)

    async def record_failure(self, name: str, under: str) -> None:
        state = shared_state()
        if under == HALF_OPEN:
            await self._open(name)
            return
        bucket = self._bucket()
        ttl = self.config["window_seconds"] * 2
        successes = self._successes.pop(name, 0)
        calls = await state.incr(f"breaker:{name}:calls:{bucket}", ttl=ttl, amount=successes + 1)
        failures = await state.incr(f"breaker:{name}:failures:{bucket}", ttl=ttl)
        record = await state.get_record(f"breaker:{name}")
        consecutive = record.get("consecutive", 0) + 1
        rate_tripped = calls >= self.config["min_calls"] and failures / calls >= self.config["failure_rate"]
        if consecutive >= self.config["consecutive_failures"] or rate_tripped:
            await self._open(name)
        else:
            await state.set_record(f"breaker:{name}", {"state": CLOSED, "consecutive": consecutive})
            self._snapshots.pop(name, None)

    async def _open(self, name: str) -> None:
        await shared_state().set_record(f"breaker:{name}", {"state": OPEN, "opened_at": time.time(), "consecutive": 0})
        self._snapshots.pop(name, None)

    async def reset(self, name: str) -> None:
        await shared_state().delete(f"breaker:{name}")
        self._snapshots.pop(name, None)
        self._successes.pop(name, None)

    def forget(self) -> None:
        """Drop this process's snapshots and unflushed counts (tests start from shared state)."""
        self._snapshots.clear()
        self._successes.clear()
        self._refreshing.clear()

    def _background(self, awaitable: Awaitable) -> None:
        task = asyncio.ensure_future(awaitable)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)


breaker = CircuitBreaker()

# --- Response cache --------------------------------------------------------------------------


def request_fingerprint(request: AIRequest) -> str:
    """A stable hash of everything that shapes the answer (not who asked)."""
    material = {
        "feature": request.feature,
        "system": request.system,
        "messages": [(m.role, m.content) for m in request.messages],
        "provider": request.provider,
        "model": request.model,
        "temperature": round(request.temperature, 3),
        "max_tokens": request.max_tokens,
        "json_mode": request.json_mode,
        "context": request.context,
    }
    raw = json.dumps(material, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


def cache_key(request: AIRequest, fingerprint: str) -> str:
    scope = request.agency_id if request.agency_id is not None else "platform"
    return f"ai:response:{scope}:{fingerprint}"


def should_cache(request: AIRequest) -> bool:
    return request.cache if request.cache is not None else request.temperature == 0


# With Redis, answers are shared by every process through the same async Redis client as the
# limits (Django's cache.aget would hop to a worker thread on every lookup). Without Redis,
# Django's local-memory cache is read directly: it does no I/O, so no thread hop is needed.


async def cache_get(key: str) -> AIResponse | None:
    data = await shared_state().get_record(key) if settings.REDIS_URL else cache.get(key)
    if not data:
        return None
    usage = Usage(**data.pop("usage"))
    return AIResponse(**{**data, "usage": usage, "cost_usd": Decimal(data["cost_usd"])})


async def cache_set(key: str, response: AIResponse) -> None:
    data = asdict(response)
    data["cost_usd"] = str(response.cost_usd)
    if settings.REDIS_URL:
        await shared_state().set_record(key, data, ttl=settings.AI_CACHE_TTL_SECONDS)
    else:
        cache.set(key, data, timeout=settings.AI_CACHE_TTL_SECONDS)


# --- Coalescing ------------------------------------------------------------------------------

_inflight: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Future]] = weakref.WeakKeyDictionary()


async def coalesce(key: str, call: Callable[[], Awaitable[AIResponse]]) -> tuple[AIResponse, bool]:
    """Run ``call`` once for all concurrent callers with the same key: (response, was_coalesced)."""
    loop = asyncio.get_running_loop()
    table = _inflight.setdefault(loop, {})
    existing = table.get(key)
    if existing is not None:
        return await asyncio.shield(existing), True
    future: asyncio.Future = loop.create_future()
    table[key] = future
    try:
        response = await call()
    except BaseException as exc:
        if not future.done():
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it, nobody logs "never retrieved"
        raise
    else:
        future.set_result(response)
        return response, False
    finally:
        table.pop(key, None)


# --- Retry -----------------------------------------------------------------------------------

BACKOFF_BASE = 0.25
BACKOFF_CAP = 8.0


def _retryable(exc: BaseException) -> bool:
    return (
        isinstance(exc, AIError)
        and exc.retryable
        and (exc.retry_after is None or exc.retry_after <= settings.AI_MAX_RETRY_AFTER_SECONDS)
    )


def backoff_seconds(attempt: int, retry_after: float | None, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter; a provider's Retry-After wins when it asks for longer."""
    jitter = (rng or random).uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)))
    return max(jitter, retry_after or 0.0)


def _wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    # attempt_number counts from the retry phase; the fast first attempt came before it.
    return backoff_seconds(state.attempt_number + 1, getattr(exc, "retry_after", None))


async def _attempt(call: Callable[[], Awaitable[Any]], timeout: float) -> Any:
    try:
        async with asyncio.timeout(timeout):
            return await call()
    except TimeoutError:
        raise AIError(ErrorKind.TIMEOUT, "The model provider did not answer in time.") from None


async def with_retries(call: Callable[[], Awaitable[Any]], on_attempt: Callable[[int], None], *, timeout: float) -> Any:
    """Call with up to AI_MAX_ATTEMPTS attempts of at most ``timeout`` seconds each, retrying
    only retryable AIErrors. The first attempt runs without tenacity (the common, fast case)."""
    on_attempt(1)
    try:
        return await _attempt(call, timeout)
    except AIError as error:
        remaining = max(1, settings.AI_MAX_ATTEMPTS) - 1
        if not remaining or not _retryable(error):
            raise
        await asyncio.sleep(backoff_seconds(1, error.retry_after))
    retrying = AsyncRetrying(
        stop=stop_after_attempt(remaining),
        wait=_wait,
        retry=retry_if_exception(_retryable),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            on_attempt(attempt.retry_state.attempt_number + 1)
            return await _attempt(call, timeout)
    raise RuntimeError("unreachable")  # pragma: no cover
