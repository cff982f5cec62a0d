"""State that several processes must agree on: rate-limit counters and small shared records.

With REDIS_URL it lives in Redis (atomic Lua scripts, one round trip per check). Without Redis:
on the embedded default, in a SQLite file of its own (var/shared-state.sqlite3) driven with raw
``sqlite3`` in the calling thread, since an ORM transaction through a thread hop cost ~2 ms per
AI call; on PostgreSQL without Redis, in the database (table ``core_sharedkey``). Either way
the web process, the worker and beat agree; no per-process memory is used. All backends expose the same async API:

- ``hit_limits(checks)``: atomically check fixed-window counters and count one hit in all of
  them, or count nothing and answer how many seconds until the first full window resets;
- ``get_record(key)`` / ``set_record(key, data, ttl)`` / ``delete(*keys)``: small JSON records;
- ``incr(key, ttl, amount=1)``: a counter that expires.

Keys are namespaced with REDIS_KEY_PREFIX (Redis) and are plain strings otherwise.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sqlite3
import threading
import time
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone


@dataclass(frozen=True)
class LimitCheck:
    scope: str  # e.g. "ai:agency:12"
    limit: int
    window_seconds: int

    def key(self, now: float) -> str:
        bucket = math.floor(now / self.window_seconds)
        return f"rl:{self.scope}:{self.window_seconds}:{bucket}"


_HIT_SCRIPT = """
for i, key in ipairs(KEYS) do
  local current = tonumber(redis.call('GET', key) or '0')
  if current >= tonumber(ARGV[2 * i - 1]) then
    local ttl = redis.call('PTTL', key)
    if ttl < 0 then ttl = tonumber(ARGV[2 * i]) end
    return ttl
  end
end
for i, key in ipairs(KEYS) do
  local value = redis.call('INCR', key)
  if value == 1 then redis.call('PEXPIRE', key, ARGV[2 * i]) end
end
return -1
"""


class RedisSharedState:
    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = prefix
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self._batches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list] = weakref.WeakKeyDictionary()
        self._running: set[asyncio.Task] = set()

    def _client(self):
        """One client (and connection pool) per event loop: pools cannot cross loops."""
        import redis.asyncio as redis_asyncio

        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = redis_asyncio.Redis.from_url(self.url)
            client.hit_script = client.register_script(_HIT_SCRIPT)
            self._clients[loop] = client
        return client

    def _k(self, key: str) -> str:
        return f"{self.prefix}:shared:{key}"

    async def hit_limits(self, checks: list[LimitCheck]) -> float | None:
        """Checks that arrive in the same turn of the event loop go to Redis in one pipeline (one
        round trip); each is still its own atomic script run, judged in arrival order."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        batch = self._batches.get(loop)
        if batch is None:
            batch = self._batches[loop] = []
            loop.call_soon(self._start_batch, loop)
        batch.append((checks, future))
        return await future

    def _start_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        task = loop.create_task(self._hit_batch(self._batches.pop(loop, [])))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _hit_batch(self, batch: list) -> None:
        now = time.time()
        calls = []
        for checks, _ in batch:
            args: list[int] = []
            for check in checks:
                args += [check.limit, check.window_seconds * 1000]
            calls.append(([self._k(check.key(now)) for check in checks], args))
        try:
            client = self._client()
            if len(calls) == 1:
                results = [await client.hit_script(keys=calls[0][0], args=calls[0][1])]
            else:
                async with client.pipeline(transaction=False) as pipe:
                    for keys, args in calls:
                        await client.hit_script(keys=keys, args=args, client=pipe)
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
                value = int(result)
                future.set_result(None if value < 0 else value / 1000)

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


class DatabaseSharedState:
    """The embedded default's backend: rows in core_sharedkey, one transaction per operation."""

    def _hit_limits(self, checks: list[LimitCheck]) -> float | None:
        for _ in range(3):
            try:
                return self._hit_limits_once(checks)
            except IntegrityError:  # two processes created the same scope's row at once
                continue
        raise RuntimeError("could not update rate-limit counters")

    def _hit_limits_once(self, checks: list[LimitCheck]) -> float | None:
        """One row per scope holds all of its windows: {"60": [bucket, count], "3600": …}."""
        from apps.core.models import SharedKey

        now = time.time()
        moment = timezone.now()
        scopes: dict[str, list[LimitCheck]] = {}
        for check in checks:
            scopes.setdefault(check.scope, []).append(check)
        with transaction.atomic():
            rows = {
                row.key: row
                for row in SharedKey.objects.select_for_update().filter(key__in=[f"rl:{scope}" for scope in scopes])
            }
            updated: dict[str, dict] = {}
            for scope, scope_checks in scopes.items():
                row = rows.get(f"rl:{scope}")
                windows, retry_after = _windows_hit(
                    row.data if row is not None and row.expires_at > moment else {}, scope_checks, now
                )
                if retry_after is not None:
                    return retry_after
                updated[scope] = windows
            for scope, windows in updated.items():
                longest = max(int(w) for w in windows)
                expires = moment + timedelta(seconds=longest)
                key = f"rl:{scope}"
                if key in rows:
                    SharedKey.objects.filter(key=key).update(data=windows, expires_at=expires)
                else:
                    SharedKey.objects.create(key=key, data=windows, count=0, expires_at=expires)
        return None

    async def hit_limits(self, checks: list[LimitCheck]) -> float | None:
        return await sync_to_async(self._hit_limits)(checks)

    def _get(self, key: str) -> dict:
        from apps.core.models import SharedKey

        row = SharedKey.objects.filter(key=key, expires_at__gt=timezone.now()).first()
        return row.data if row else {}

    async def get_record(self, key: str) -> dict:
        return await sync_to_async(self._get)(key)

    def _set(self, key: str, data: dict, ttl: float | None) -> None:
        from apps.core.models import SharedKey

        expires = timezone.now() + timedelta(seconds=ttl if ttl else 10 * 365 * 86400)
        SharedKey.objects.update_or_create(key=key, defaults={"data": data, "count": 0, "expires_at": expires})

    async def set_record(self, key: str, data: dict, ttl: float | None = None) -> None:
        await sync_to_async(self._set)(key, data, ttl)

    def _incr(self, key: str, ttl: float, amount: int = 1) -> int:
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
        return await sync_to_async(self._incr)(key, ttl, amount)

    def _delete(self, keys: tuple[str, ...]) -> None:
        from apps.core.models import SharedKey

        SharedKey.objects.filter(key__in=keys).delete()

    async def delete(self, *keys: str) -> None:
        await sync_to_async(self._delete)(keys)


def _windows_hit(windows: dict, checks: list[LimitCheck], now: float) -> tuple[dict, float | None]:
    """Count one hit in a scope's windows ({"60": [bucket, count], …}), or say how long to wait."""
    windows = dict(windows)
    for check in checks:
        bucket = math.floor(now / check.window_seconds)
        current_bucket, count = windows.get(str(check.window_seconds), (bucket, 0))
        if current_bucket != bucket:
            count = 0
        if count >= check.limit:
            return windows, (bucket + 1) * check.window_seconds - now
        windows[str(check.window_seconds)] = (bucket, count + 1)
    return windows, None


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

    def _hit_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = self._batches.pop(loop, [])
        now = time.time()
        answers: list[float | None] = []
        try:
            with self._transaction() as connection:
                windows: dict[str, dict] = {}
                changed: set[str] = set()
                for checks, _ in batch:
                    scopes: dict[str, list[LimitCheck]] = {}
                    for check in checks:
                        scopes.setdefault(check.scope, []).append(check)
                    updated, retry_after = {}, None
                    for scope, scope_checks in scopes.items():
                        if scope not in windows:
                            row = self._row(connection, f"rl:{scope}")
                            windows[scope] = row[1] if row else {}
                        updated[scope], retry_after = _windows_hit(windows[scope], scope_checks, now)
                        if retry_after is not None:
                            break
                    if retry_after is None:
                        windows.update(updated)
                        changed.update(updated)
                    answers.append(retry_after)
                for scope in changed:
                    counts = windows[scope]
                    self._put(connection, f"rl:{scope}", 0, counts, now + max(int(w) for w in counts))
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

    async def get_record(self, key: str) -> dict:
        with self._transaction() as connection:
            row = self._row(connection, key)
        return row[1] if row else {}

    async def set_record(self, key: str, data: dict, ttl: float | None = None) -> None:
        with self._transaction() as connection:
            self._put(connection, key, 0, data, time.time() + (ttl or 10 * 365 * 86400))

    async def incr(self, key: str, ttl: float, amount: int = 1) -> int:
        with self._transaction() as connection:
            row = self._row(connection, key)
            count = (row[0] if row else 0) + amount
            expires = time.time() + ttl
            if row:
                connection.execute("UPDATE shared SET count = ? WHERE key = ?", (count, key))
            else:
                self._put(connection, key, count, {}, expires)
        return count

    async def delete(self, *keys: str) -> None:
        with self._transaction() as connection:
            connection.executemany("DELETE FROM shared WHERE key = ?", [(key,) for key in keys])

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
