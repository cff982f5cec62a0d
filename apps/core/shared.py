"""State that several processes must agree on: rate-limit counters and small shared records.

With REDIS_URL it lives in Redis (atomic Lua scripts, one round trip per check). Without Redis:
on the embedded default, in a SQLite file of its own (var/shared-state.sqlite3) driven with raw
``sqlite3`` in the calling thread, since an ORM transaction through a thread hop cost ~2 ms per
AI call; on PostgreSQL without Redis, in the database (table ``core_sharedkey``). Either way
the web process, the worker and beat agree; no per-process memory is used. All backends expose the same async API:

- ``hit_limits(checks)`` (and ``hit_limits_sync`` for synchronous callers such as Celery tasks):
  the product's one rate limiter. Each ``LimitCheck`` is a GCRA (generic cell rate algorithm)
  layer: ``limit`` per ``window_seconds`` on average, at most ``burst`` at once. All layers are
  judged in one atomic step (one Lua script on Redis, one transaction otherwise): either every
  layer admits the hit and counts it, or none counts it and the answer is how many seconds until
  all would admit it. In any window of W seconds a layer admits at most
  ``limit * W / window_seconds + burst`` hits;
- ``penalize(check, retry_after)`` / ``limit_status(check)``: adaptive layers (AIMD). A platform
  that answers 429 halves the layer's rate (down to ``ADAPTIVE_FLOOR`` of it) and blocks it for
  ``retry_after``; the rate grows back linearly, ``ADAPTIVE_RECOVERY_PER_S`` of the full rate a
  second, with no write per success. ``limit_status`` says the rate in force;
- ``get_record(key)`` / ``set_record(key, data, ttl)`` / ``delete(*keys)``: small JSON records;
- ``incr(key, ttl, amount=1)``: a counter that expires; ``raise_to(key, ttl, value)`` raises it to
  at least ``value`` (a maximum, so doing it twice is doing it once); ``get_counts(keys)`` reads
  many counters as they stand (0 when absent or expired) in one read-only round trip (a page's
  gauges: no write, no row lock);
- ``swap_record(key, expected, data, ttl)``: compare-and-set of a record (``expected`` None: only
  if absent; ``data`` None: delete), e.g. a lock that only its holder's token releases;
- each of them also as ``…_sync`` for synchronous callers (Celery tasks).

Keys are namespaced with REDIS_KEY_PREFIX (Redis) and are plain strings otherwise.

``uninterruptible(awaitable)`` runs a clean-up (releasing a reservation or a lock) to its end even
when the calling task is cancelled meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
import time
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

ADAPTIVE_DECREASE = 0.5  # a 429 multiplies an adaptive layer's rate by this …
ADAPTIVE_FLOOR = 0.1  # … but never below this share of its configured rate
ADAPTIVE_RECOVERY_PER_S = 0.5 / 300  # back from half to full rate in five minutes without 429s


@dataclass(frozen=True)
class LimitCheck:
    """One layer of a rate limit: ``limit`` hits per ``window_seconds`` on average, ``burst`` at
    once (default ``limit``: a fresh layer admits a whole window's worth at once, like a quota).
    ``adaptive`` layers slow down when ``penalize``d (a platform's 429) and recover by themselves."""

    scope: str  # e.g. "ai:openai:agency:12", "delivery:account:7:onlyfans"
    limit: int
    window_seconds: float
    burst: int | None = None
    adaptive: bool = False

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window_seconds <= 0 or (self.burst is not None and self.burst < 1):
            raise ValueError(f"{self!r}: limit and burst must be at least 1 and the window positive")

    def key(self) -> str:
        return f"rl:{self.scope}:{self.window_seconds:g}"

    @property
    def interval(self) -> float:
        """Seconds between two hits at the full rate (GCRA's emission interval)."""
        return self.window_seconds / self.limit

    @property
    def burst_size(self) -> int:
        return self.burst if self.burst is not None else self.limit


@dataclass(frozen=True)
class LimitStatus:
    scope: str
    rate_per_s: float  # the rate in force now (below the configured one after a 429)
    configured_rate_per_s: float
    factor: float  # rate_per_s / configured_rate_per_s
    wait_s: float  # how long the next hit would wait (0: admitted now)


async def uninterruptible(awaitable):
    """Await ``awaitable`` to its end even if the calling task is cancelled meanwhile (a client
    that disconnects): the cancellation is raised once it is done. For clean-ups that must not
    stop half-way, such as giving back a reservation or releasing a lock."""
    task = asyncio.ensure_future(awaitable)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():  # the clean-up itself was cancelled (the loop is closing)
                raise
            cancelled = True
            continue
        break
    if cancelled:
        raise asyncio.CancelledError
    return result


def _encoded(data: dict | None) -> str:
    """A record as stored (the same encoding as set_record), '' for none."""
    return "" if data is None else json.dumps(data)


def _factor(record: dict, check: LimitCheck, now: float) -> float:
    if not check.adaptive or "f0" not in record:
        return 1.0
    return min(1.0, record["f0"] + (now - record["t0"]) * ADAPTIVE_RECOVERY_PER_S)


def _gcra(record: dict, check: LimitCheck, now: float, cost: int = 1) -> tuple[float, float]:
    """(the layer's new theoretical arrival time if it admits ``cost`` hits, seconds to wait or 0)."""
    interval = check.interval / _factor(record, check, now)
    new_tat = max(record.get("tat", now), now) + interval * cost
    allow_at = new_tat - interval * check.burst_size
    return new_tat, max(0.0, allow_at - now)


def _expires(record: dict, check: LimitCheck, now: float) -> float:
    """When a layer's record may be forgotten: its TAT passed and its rate fully recovered."""
    until = record.get("tat", now)
    factor = _factor(record, check, now)
    if factor < 1.0:
        until = max(until, now + (1.0 - factor) / ADAPTIVE_RECOVERY_PER_S)
    return max(until, now) + 1.0


def _judge(
    records: dict[str, dict], checks: list[LimitCheck], now: float, cost: int = 1
) -> tuple[dict[str, dict], float | None]:
    """All layers admit ``cost`` hits (their updated records) or none does (the longest wait)."""
    updated: dict[str, dict] = {}
    wait = 0.0
    for check in checks:
        key = check.key()
        new_tat, layer_wait = _gcra(updated.get(key) or records.get(key) or {}, check, now, cost)
        wait = max(wait, layer_wait)
        updated[key] = {**(records.get(key) or {}), "tat": new_tat}
    if wait > 0:
        return {}, wait
    return updated, None


def _penalized(record: dict, check: LimitCheck, retry_after: float, now: float) -> dict:
    """A 429: the rate halves (AIMD) and nothing passes before ``retry_after``."""
    factor = max(ADAPTIVE_FLOOR, _factor(record, check, now) * ADAPTIVE_DECREASE)
    interval = check.interval / factor
    blocked_tat = now + max(0.0, retry_after) + interval * (check.burst_size - 1)
    return {"tat": max(record.get("tat", now), blocked_tat), "f0": factor, "t0": now}


def _status(record: dict, check: LimitCheck, now: float) -> LimitStatus:
    factor = _factor(record, check, now)
    configured = check.limit / check.window_seconds
    return LimitStatus(check.scope, configured * factor, configured, factor, _gcra(record, check, now)[1])


# GCRA over every layer in one step. Time is Redis's own clock (TIME), so workers on several
# machines agree. KEYS: one hash per layer (tat, f0, t0; microseconds). ARGV[1]: recovery per µs;
# ARGV[2]: the hits asked for (cost); then one "interval_µs,burst,adaptive(0/1)" per layer (one
# argument a layer keeps the command short: encoding arguments is most of a decision's client-side
# cost). Answers -1 or the wait (µs).
_HIT_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local recovery = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local wait = 0
local tats, ttls = {}, {}
for i, key in ipairs(KEYS) do
  local a, b, c = string.match(ARGV[i + 2], '([^,]+),([^,]+),([^,]+)')
  local interval, burst = tonumber(a), tonumber(b)
  local v = redis.call('HMGET', key, 'tat', 'f0', 't0')
  local factor = 1
  if c == '1' and v[2] then
    factor = math.min(1, tonumber(v[2]) + (now - tonumber(v[3])) * recovery)
  end
  interval = interval / factor
  local tat = tonumber(v[1]) or now
  if tat < now then tat = now end
  local new_tat = tat + interval * cost
  local allow_at = new_tat - interval * burst
  if allow_at - now > wait then wait = allow_at - now end
  local ttl = new_tat - now
  if factor < 1 then ttl = math.max(ttl, (1 - factor) / recovery) end
  tats[i], ttls[i] = new_tat, ttl
end
if wait > 0 then return math.ceil(wait) end
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, 'tat', string.format('%.0f', tats[i]))
  redis.call('PEXPIRE', key, math.ceil(ttls[i] / 1000) + 1000)
end
return -1
"""

# A platform's 429 on an adaptive layer. KEYS[1]; ARGV: interval (µs), burst, retry_after (µs),
# decrease, floor, recovery per µs.
_PENALIZE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, burst, retry_after = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local decrease, floor, recovery = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local v = redis.call('HMGET', KEYS[1], 'tat', 'f0', 't0')
local factor = 1
if v[2] then factor = math.min(1, tonumber(v[2]) + (now - tonumber(v[3])) * recovery) end
factor = math.max(floor, factor * decrease)
local tat = math.max(tonumber(v[1]) or now, now + retry_after + interval / factor * (burst - 1))
redis.call('HSET', KEYS[1], 'tat', string.format('%.0f', tat), 'f0', tostring(factor), 't0', string.format('%.0f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(math.max(tat - now, (1 - factor) / recovery) / 1000) + 1000)
return tostring(factor)
"""

# Read-only: a layer's record with Redis's clock, for limit_status.
_READ_SCRIPT = """
local t = redis.call('TIME')
local v = redis.call('HMGET', KEYS[1], 'tat', 'f0', 't0')
return {t[1], t[2], v[1] or '', v[2] or '', v[3] or ''}
"""


# Compare-and-set of a record. KEYS[1]; ARGV: the expected value ('' = absent), the new value
# ('' = delete), the TTL in ms (0 = none). Answers 1 when it swapped.
_SWAP_SCRIPT = """
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '' then
  if current then return 0 end
elseif current ~= ARGV[1] then
  return 0
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
elseif tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[2])
end
return 1
"""

# A counter raised to at least ARGV[1] (an integer); ARGV[2]: its TTL in ms when it is new.
_RAISE_SCRIPT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local value = tonumber(ARGV[1])
if value <= current then return current end
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return value
"""


_RECOVERY_ARG = repr(ADAPTIVE_RECOVERY_PER_S / 1e6).encode()


def _redis_args(checks: list[LimitCheck]) -> list[bytes]:
    args = []
    for check in checks:
        args.append(f"{check.interval * 1e6!r},{check.burst_size},{1 if check.adaptive else 0}".encode())
    return args


def _redis_wait(result) -> float | None:
    value = int(result)
    return None if value < 0 else value / 1e6


def _redis_record(raw: list) -> tuple[float, dict]:
    """(now in seconds, the layer's record in seconds) from _READ_SCRIPT's answer."""
    values = [item.decode() if isinstance(item, bytes) else str(item) for item in raw]
    now = int(values[0]) + int(values[1]) / 1e6
    record: dict = {}
    if values[2]:
        record["tat"] = float(values[2]) / 1e6
    if values[3]:
        record["f0"], record["t0"] = float(values[3]), float(values[4]) / 1e6
    return now, record


def _unique(checks: list[LimitCheck]) -> list[LimitCheck]:
    """One check per layer key (the same layer twice would be judged against a stale record)."""
    return list({check.key(): check for check in checks}.values())


class RedisSharedState:
    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = prefix
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self._batches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list] = weakref.WeakKeyDictionary()
        self._running: set[asyncio.Task] = set()
        self._sync: tuple[int, Any] | None = None
        self._calls: dict[tuple[LimitCheck, ...], tuple[list[bytes], list[bytes]]] = {}

    def _client(self):
        """One client (and connection pool) per event loop: pools cannot cross loops."""
        import redis.asyncio as redis_asyncio

        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = redis_asyncio.Redis.from_url(self.url)
            self._register(client)
            self._clients[loop] = client
        return client

    def _sync_client(self):
        """The synchronous client (Celery tasks, form views): one pool per process."""
        import redis

        if self._sync is None or self._sync[0] != os.getpid():
            client = redis.Redis.from_url(self.url)
            self._register(client)
            self._sync = (os.getpid(), client)
        return self._sync[1]

    @staticmethod
    def _register(client) -> None:
        client.hit_script = client.register_script(_HIT_SCRIPT)
        client.penalize_script = client.register_script(_PENALIZE_SCRIPT)
        client.read_script = client.register_script(_READ_SCRIPT)
        client.swap_script = client.register_script(_SWAP_SCRIPT)
        client.raise_script = client.register_script(_RAISE_SCRIPT)

    def _k(self, key: str) -> str:
        return f"{self.prefix}:shared:{key}"

    def _call(self, checks: list[LimitCheck]) -> tuple[list[bytes], list[bytes]]:
        """(keys, args) of the hit script, encoded once per distinct list of layers."""
        frozen = tuple(checks)
        call = self._calls.get(frozen)
        if call is None:
            unique = _unique(checks)
            call = [self._k(check.key()).encode() for check in unique], _redis_args(unique)
            if len(self._calls) >= 4096:
                self._calls.clear()
            self._calls[frozen] = call
        return call

    async def hit_limits(self, checks: list[LimitCheck]) -> float | None:
        """Checks that arrive in the same turn of the event loop go to Redis in one pipeline (one
        round trip); each is still its own atomic script run, judged in arrival order. The batch's
        task is made by the turn's first check and takes the batch when it first runs, in the next
        turn (a callback that made the task would cost one more turn, milliseconds in a burst)."""
        if not checks:
            return None
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        batch = self._batches.get(loop)
        if batch is None:
            batch = self._batches[loop] = []
            task = loop.create_task(self._hit_batch(loop))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        batch.append((checks, future))
        return await future

    def hit_limits_sync(self, checks: list[LimitCheck], cost: int = 1) -> float | None:
        """``cost`` hits at once (a pump's batch): all admitted, or none and the wait for all."""
        if not checks:
            return None
        keys, args = self._call(checks)
        return _redis_wait(self._sync_client().hit_script(keys=keys, args=[_RECOVERY_ARG, cost, *args]))

    async def _hit_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = self._batches.pop(loop, [])
        calls = [self._call(checks) for checks, _ in batch]
        try:
            client = self._client()
            if len(calls) == 1:
                results = [await client.hit_script(keys=calls[0][0], args=[_RECOVERY_ARG, b"1", *calls[0][1]])]
            else:
                async with client.pipeline(transaction=False) as pipe:
                    for keys, args in calls:
                        await client.hit_script(keys=keys, args=[_RECOVERY_ARG, b"1", *args], client=pipe)
                    results = await pipe.execute()
        except BaseException as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(_redis_wait(result))

    def _penalize_args(self, check: LimitCheck, retry_after: float) -> dict:
        args = [check.interval * 1e6, check.burst_size, max(0.0, retry_after) * 1e6]
        args += [ADAPTIVE_DECREASE, ADAPTIVE_FLOOR, ADAPTIVE_RECOVERY_PER_S / 1e6]
        return {"keys": [self._k(check.key())], "args": args}

    async def penalize(self, check: LimitCheck, retry_after: float = 0.0) -> None:
        await self._client().penalize_script(**self._penalize_args(check, retry_after))

    def penalize_sync(self, check: LimitCheck, retry_after: float = 0.0) -> None:
        self._sync_client().penalize_script(**self._penalize_args(check, retry_after))

    async def limit_status(self, check: LimitCheck) -> LimitStatus:
        now, record = _redis_record(await self._client().read_script(keys=[self._k(check.key())]))
        return _status(record, check, now)

    def limit_status_sync(self, check: LimitCheck) -> LimitStatus:
        now, record = _redis_record(self._sync_client().read_script(keys=[self._k(check.key())]))
        return _status(record, check, now)

    async def get_record(self, key: str) -> dict:
        raw = await self._client().get(self._k(key))
        return json.loads(raw) if raw else {}

    async def set_record(self, key: str, data: dict, ttl: float | None = None) -> None:
        await self._client().set(self._k(key), json.dumps(data), px=int(ttl * 1000) if ttl else None)

    async def incr(self, key: str, ttl: float, amount: int = 1) -> int:
        client = self._client()
        async with client.pipeline(transaction=True) as pipe:
            pipe.incrby(self._k(key), amount)
            pipe.pexpire(self._k(key), int(ttl * 1000), nx=True)
            value, _ = await pipe.execute()
        return int(value)

    async def delete(self, *keys: str) -> None:
        if keys:
            await self._client().delete(*[self._k(key) for key in keys])

    @staticmethod
    def _swap_args(expected: dict | None, data: dict | None, ttl: float | None) -> list:
        return [_encoded(expected), _encoded(data), int(ttl * 1000) if ttl else 0]

    async def swap_record(self, key: str, expected: dict | None, data: dict | None, ttl: float | None = None) -> bool:
        args = self._swap_args(expected, data, ttl)
        return bool(await self._client().swap_script(keys=[self._k(key)], args=args))

    def swap_record_sync(self, key: str, expected: dict | None, data: dict | None, ttl: float | None = None) -> bool:
        args = self._swap_args(expected, data, ttl)
        return bool(self._sync_client().swap_script(keys=[self._k(key)], args=args))

    async def raise_to(self, key: str, ttl: float, value: int) -> int:
        return int(await self._client().raise_script(keys=[self._k(key)], args=[int(value), int(ttl * 1000)]))

    def raise_to_sync(self, key: str, ttl: float, value: int) -> int:
        return int(self._sync_client().raise_script(keys=[self._k(key)], args=[int(value), int(ttl * 1000)]))

    def get_record_sync(self, key: str) -> dict:
        raw = self._sync_client().get(self._k(key))
        return json.loads(raw) if raw else {}

    def set_record_sync(self, key: str, data: dict, ttl: float | None = None) -> None:
        self._sync_client().set(self._k(key), json.dumps(data), px=int(ttl * 1000) if ttl else None)

    def incr_sync(self, key: str, ttl: float, amount: int = 1) -> int:
        with self._sync_client().pipeline(transaction=True) as pipe:
            pipe.incrby(self._k(key), amount)
            pipe.pexpire(self._k(key), int(ttl * 1000), nx=True)
            value, _ = pipe.execute()
        return int(value)

    def delete_sync(self, *keys: str) -> None:
        if keys:
            self._sync_client().delete(*[self._k(key) for key in keys])

    @staticmethod
    def _counts(keys: list[str], values: list) -> dict[str, int]:
        counts = {}
        for key, value in zip(keys, values, strict=True):
            try:
                counts[key] = int(value) if value is not None else 0
            except ValueError:  # a record, not a counter
                counts[key] = 0
        return counts

    async def get_counts(self, keys: list[str]) -> dict[str, int]:
        keys = list(dict.fromkeys(keys))
        values = await self._client().mget([self._k(key) for key in keys]) if keys else []
        return self._counts(keys, values)

    def get_counts_sync(self, keys: list[str]) -> dict[str, int]:
        keys = list(dict.fromkeys(keys))
        values = self._sync_client().mget([self._k(key) for key in keys]) if keys else []
        return self._counts(keys, values)


class DatabaseSharedState:
    """PostgreSQL without Redis: rows in core_sharedkey, one transaction per operation; a layer's
    row is locked (``SELECT … FOR UPDATE``) while it is judged, so processes take turns."""

    @staticmethod
    def _locked(keys: list[str]) -> dict:
        from apps.core.models import SharedKey

        return {row.key: row for row in SharedKey.objects.select_for_update().filter(key__in=keys).order_by("key")}

    @staticmethod
    def _save(rows: dict, key: str, record: dict, expires_at: float) -> None:
        from apps.core.models import SharedKey

        expires = datetime.fromtimestamp(expires_at, tz=UTC)
        if key in rows:
            SharedKey.objects.filter(key=key).update(data=record, expires_at=expires)
        else:
            SharedKey.objects.create(key=key, data=record, count=0, expires_at=expires)

    @staticmethod
    def _retrying(operation):
        for _ in range(3):
            try:
                return operation()
            except IntegrityError:  # two processes created the same layer's row at once
                continue
        raise RuntimeError("could not update rate-limit state")

    def hit_limits_sync(self, checks: list[LimitCheck], cost: int = 1) -> float | None:
        checks = _unique(checks)
        if not checks:
            return None
        return self._retrying(lambda: self._hit_once(checks, cost))

    def _hit_once(self, checks: list[LimitCheck], cost: int = 1) -> float | None:
        now = time.time()
        with transaction.atomic():
            rows = self._locked([check.key() for check in checks])
            records = {key: row.data for key, row in rows.items() if row.expires_at.timestamp() > now}
            updated, wait = _judge(records, checks, now, cost)
            for check in checks:
                if check.key() in updated:
                    record = updated[check.key()]
                    self._save(rows, check.key(), record, _expires(record, check, now))
        return wait

    async def hit_limits(self, checks: list[LimitCheck]) -> float | None:
        return await sync_to_async(self.hit_limits_sync)(checks)

    def penalize_sync(self, check: LimitCheck, retry_after: float = 0.0) -> None:
        def once() -> None:
            now = time.time()
            with transaction.atomic():
                rows = self._locked([check.key()])
                row = rows.get(check.key())
                record = row.data if row is not None and row.expires_at.timestamp() > now else {}
                record = _penalized(record, check, retry_after, now)
                self._save(rows, check.key(), record, _expires(record, check, now))

        self._retrying(once)

    async def penalize(self, check: LimitCheck, retry_after: float = 0.0) -> None:
        await sync_to_async(self.penalize_sync)(check, retry_after)

    def limit_status_sync(self, check: LimitCheck) -> LimitStatus:
        now = time.time()
        return _status(self.get_record_sync(check.key()), check, now)

    async def limit_status(self, check: LimitCheck) -> LimitStatus:
        return await sync_to_async(self.limit_status_sync)(check)

    def get_record_sync(self, key: str) -> dict:
        from apps.core.models import SharedKey

        row = SharedKey.objects.filter(key=key, expires_at__gt=timezone.now()).first()
        return row.data if row else {}

    async def get_record(self, key: str) -> dict:
        return await sync_to_async(self.get_record_sync)(key)

    def set_record_sync(self, key: str, data: dict, ttl: float | None = None) -> None:
        from apps.core.models import SharedKey

        expires = timezone.now() + timedelta(seconds=ttl if ttl else 10 * 365 * 86400)
        SharedKey.objects.update_or_create(key=key, defaults={"data": data, "count": 0, "expires_at": expires})

    async def set_record(self, key: str, data: dict, ttl: float | None = None) -> None:
        await sync_to_async(self.set_record_sync)(key, data, ttl)

    def incr_sync(self, key: str, ttl: float, amount: int = 1) -> int:
        from apps.core.models import SharedKey

        moment = timezone.now()
        for _ in range(3):
            with transaction.atomic():
                row = SharedKey.objects.select_for_update().filter(key=key).first()
                if row is not None and row.expires_at > moment:
                    SharedKey.objects.filter(key=key).update(count=F("count") + amount)
                    return row.count + amount
                try:
                    with transaction.atomic():
                        SharedKey.objects.update_or_create(
                            key=key,
                            defaults={"count": amount, "data": {}, "expires_at": moment + timedelta(seconds=ttl)},
                        )
                    return amount
                except IntegrityError:
                    continue
        raise RuntimeError(f"could not increment shared counter {key!r}")

    async def incr(self, key: str, ttl: float, amount: int = 1) -> int:
        return await sync_to_async(self.incr_sync)(key, ttl, amount)

    def swap_record_sync(self, key: str, expected: dict | None, data: dict | None, ttl: float | None = None) -> bool:
        from apps.core.models import SharedKey

        moment = timezone.now()
        try:
            with transaction.atomic():
                row = SharedKey.objects.select_for_update().filter(key=key).first()
                live = row is not None and row.expires_at > moment
                if (expected is None and live) or (expected is not None and (not live or row.data != expected)):
                    return False
                if data is None:
                    SharedKey.objects.filter(key=key).delete()
                    return True
                expires = moment + timedelta(seconds=ttl if ttl else 10 * 365 * 86400)
                if row is None:
                    SharedKey.objects.create(key=key, data=data, count=0, expires_at=expires)
                else:
                    SharedKey.objects.filter(key=key).update(data=data, count=0, expires_at=expires)
                return True
        except IntegrityError:  # another process created the row a moment ago: it is not absent
            return False

    async def swap_record(self, key: str, expected: dict | None, data: dict | None, ttl: float | None = None) -> bool:
        return await sync_to_async(self.swap_record_sync)(key, expected, data, ttl)

    def raise_to_sync(self, key: str, ttl: float, value: int) -> int:
        from apps.core.models import SharedKey

        for _ in range(3):
            moment = timezone.now()
            try:
                with transaction.atomic():
                    row = SharedKey.objects.select_for_update().filter(key=key).first()
                    if row is not None and row.expires_at > moment:
                        if value > row.count:
                            SharedKey.objects.filter(key=key).update(count=value)
                        return max(value, row.count)
                    if value <= 0:
                        return 0
                    expires = moment + timedelta(seconds=ttl)
                    if row is None:
                        SharedKey.objects.create(key=key, data={}, count=value, expires_at=expires)
                    else:
                        SharedKey.objects.filter(key=key).update(count=value, data={}, expires_at=expires)
                    return value
            except IntegrityError:
                continue
        raise RuntimeError(f"could not raise shared counter {key!r}")

    async def raise_to(self, key: str, ttl: float, value: int) -> int:
        return await sync_to_async(self.raise_to_sync)(key, ttl, value)

    def delete_sync(self, *keys: str) -> None:
        from apps.core.models import SharedKey

        SharedKey.objects.filter(key__in=keys).delete()

    async def delete(self, *keys: str) -> None:
        await sync_to_async(self.delete_sync)(*keys)

    def get_counts_sync(self, keys: list[str]) -> dict[str, int]:
        from apps.core.models import SharedKey

        counts = dict.fromkeys(keys, 0)
        if counts:
            live = SharedKey.objects.filter(key__in=list(counts), expires_at__gt=timezone.now())
            counts.update(live.values_list("key", "count"))
        return counts

    async def get_counts(self, keys: list[str]) -> dict[str, int]:
        return await sync_to_async(self.get_counts_sync)(keys)


class LocalSharedState:
    """The embedded default's backend: a small SQLite file of its own, var/shared-state.sqlite3.

    Raw ``sqlite3`` (no ORM, no thread hop), WAL, and ``BEGIN IMMEDIATE`` per operation, so all
    processes of the embedded default serialise on the file's lock: one check costs tens of
    microseconds. Durability is not needed here (``synchronous=OFF``): losing the last instant
    of rate-limit counts in a power cut is harmless.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._batches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list] = weakref.WeakKeyDictionary()

    def _conn(self) -> sqlite3.Connection:
        if self._connection is None or self._pid != os.getpid():  # a forked worker needs its own
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=OFF")
            connection.execute(
                "CREATE TABLE IF NOT EXISTS shared (key TEXT PRIMARY KEY, count INTEGER NOT NULL DEFAULT 0,"
                " data TEXT NOT NULL DEFAULT '{}', expires REAL NOT NULL)"
            )
            self._connection, self._pid = connection, os.getpid()
        return self._connection

    @contextmanager
    def _transaction(self):
        with self._lock:
            connection = self._conn()
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            else:
                connection.execute("COMMIT")

    @staticmethod
    def _row(connection: sqlite3.Connection, key: str) -> tuple[int, dict] | None:
        row = connection.execute("SELECT count, data, expires FROM shared WHERE key = ?", (key,)).fetchone()
        if row is None or row[2] <= time.time():
            return None
        return row[0], json.loads(row[1])

    @staticmethod
    def _put(connection: sqlite3.Connection, key: str, count: int, data: dict, expires: float) -> None:
        connection.execute(
            "INSERT OR REPLACE INTO shared (key, count, data, expires) VALUES (?, ?, ?, ?)",
            (key, count, json.dumps(data), expires),
        )

    async def hit_limits(self, checks: list[LimitCheck]) -> float | None:
        """Checks that arrive in the same turn of the event loop share one transaction (one
        ``BEGIN IMMEDIATE``, one read and one write per scope): each is still judged on its own,
        in arrival order, against the counts the earlier ones left. Fifty requests in flight
        then cost a few transactions per turn instead of fifty."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        batch = self._batches.get(loop)
        if batch is None:
            batch = self._batches[loop] = []
            loop.call_soon(self._hit_batch, loop)
        batch.append((checks, future))
        return await future

    def _judge_all(self, batch_checks: list[list[LimitCheck]], cost: int = 1) -> list[float | None]:
        """Judge each hit in turn inside one transaction, against the records the earlier ones left."""
        now = time.time()
        answers: list[float | None] = []
        with self._transaction() as connection:
            records: dict[str, dict] = {}
            layers: dict[str, LimitCheck] = {}
            changed: set[str] = set()
            for checks in batch_checks:
                checks = _unique(checks)
                for check in checks:
                    key = check.key()
                    if key not in records:
                        row = self._row(connection, key)
                        records[key] = row[1] if row else {}
                    layers[key] = check
                updated, wait = _judge(records, checks, now, cost)
                records.update(updated)
                changed.update(updated)
                answers.append(wait)
            for key in changed:
                record = records[key]
                self._put(connection, key, 0, record, _expires(record, layers[key], now))
        return answers

    def hit_limits_sync(self, checks: list[LimitCheck], cost: int = 1) -> float | None:
        """``cost`` hits at once (a pump's batch): all admitted, or none and the wait for all."""
        return self._judge_all([checks], cost)[0] if checks else None

    def _hit_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = self._batches.pop(loop, [])
        try:
            answers = self._judge_all([checks for checks, _ in batch])
        except BaseException as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), answer in zip(batch, answers, strict=True):
            if not future.done():
                future.set_result(answer)

    def penalize_sync(self, check: LimitCheck, retry_after: float = 0.0) -> None:
        now = time.time()
        with self._transaction() as connection:
            row = self._row(connection, check.key())
            record = _penalized(row[1] if row else {}, check, retry_after, now)
            self._put(connection, check.key(), 0, record, _expires(record, check, now))

    async def penalize(self, check: LimitCheck, retry_after: float = 0.0) -> None:
        self.penalize_sync(check, retry_after)

    def limit_status_sync(self, check: LimitCheck) -> LimitStatus:
        now = time.time()
        with self._transaction() as connection:
            row = self._row(connection, check.key())
        return _status(row[1] if row else {}, check, now)

    async def limit_status(self, check: LimitCheck) -> LimitStatus:
        return self.limit_status_sync(check)

    def get_record_sync(self, key: str) -> dict:
        with self._transaction() as connection:
            row = self._row(connection, key)
        return row[1] if row else {}

    async def get_record(self, key: str) -> dict:
        return self.get_record_sync(key)

    def set_record_sync(self, key: str, data: dict, ttl: float | None = None) -> None:
        with self._transaction() as connection:
            self._put(connection, key, 0, data, time.time() + (ttl or 10 * 365 * 86400))

    async def set_record(self, key: str, data: dict, ttl: float | None = None) -> None:
        self.set_record_sync(key, data, ttl)

    def incr_sync(self, key: str, ttl: float, amount: int = 1) -> int:
        with self._transaction() as connection:
            row = self._row(connection, key)
            count = (row[0] if row else 0) + amount
            expires = time.time() + ttl
            if row:
                connection.execute("UPDATE shared SET count = ? WHERE key = ?", (count, key))
            else:
                self._put(connection, key, count, {}, expires)
        return count

    async def incr(self, key: str, ttl: float, amount: int = 1) -> int:
        return self.incr_sync(key, ttl, amount)

    def swap_record_sync(self, key: str, expected: dict | None, data: dict | None, ttl: float | None = None) -> bool:
        with self._transaction() as connection:
            row = self._row(connection, key)
            if (expected is None and row is not None) or (expected is not None and (row is None or row[1] != expected)):
                return False
            if data is None:
                connection.execute("DELETE FROM shared WHERE key = ?", (key,))
            else:
                self._put(connection, key, 0, data, time.time() + (ttl or 10 * 365 * 86400))
            return True

    async def swap_record(self, key: str, expected: dict | None, data: dict | None, ttl: float | None = None) -> bool:
        return self.swap_record_sync(key, expected, data, ttl)

    def raise_to_sync(self, key: str, ttl: float, value: int) -> int:
        with self._transaction() as connection:
            row = self._row(connection, key)
            if row is not None:
                if value > row[0]:
                    connection.execute("UPDATE shared SET count = ? WHERE key = ?", (value, key))
                return max(value, row[0])
            if value <= 0:
                return 0
            self._put(connection, key, value, {}, time.time() + ttl)
            return value

    async def raise_to(self, key: str, ttl: float, value: int) -> int:
        return self.raise_to_sync(key, ttl, value)

    def delete_sync(self, *keys: str) -> None:
        with self._transaction() as connection:
            connection.executemany("DELETE FROM shared WHERE key = ?", [(key,) for key in keys])

    async def delete(self, *keys: str) -> None:
        self.delete_sync(*keys)

    def get_counts_sync(self, keys: list[str]) -> dict[str, int]:
        counts = dict.fromkeys(keys, 0)
        if counts:
            with self._lock:  # one statement, its own read transaction: no write lock taken
                rows = (
                    self._conn()
                    .execute(
                        "SELECT key, count FROM shared WHERE key IN (SELECT value FROM json_each(?)) AND expires > ?",
                        (json.dumps(list(counts)), time.time()),
                    )
                    .fetchall()
                )
            counts.update(rows)
        return counts

    async def get_counts(self, keys: list[str]) -> dict[str, int]:
        return self.get_counts_sync(keys)

    def purge_expired(self) -> int:
        with self._transaction() as connection:
            return connection.execute("DELETE FROM shared WHERE expires <= ?", (time.time(),)).rowcount


_state: RedisSharedState | LocalSharedState | DatabaseSharedState | None = None


def shared_state() -> RedisSharedState | LocalSharedState | DatabaseSharedState:
    global _state
    if _state is None:
        if settings.REDIS_URL:
            _state = RedisSharedState(settings.REDIS_URL, settings.REDIS_KEY_PREFIX)
        elif settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
            _state = LocalSharedState(settings.VAR_DIR / "shared-state.sqlite3")
        else:
            _state = DatabaseSharedState()
    return _state
