"""Health checks for the services Huntaze needs: database, cache, channel layer, broker.

Each check does one real round trip and reports its latency; the API answers 503 when any
required check fails. The backend name tells an operator which mode the process runs in.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from celery import current_app
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import connection

logger = logging.getLogger(__name__)


@dataclass
class CheckResult:
    name: str
    ok: bool
    latency_ms: float
    backend: str
    error: str | None = None
    required: bool = True


def _timed(name: str, backend: str, func) -> CheckResult:
    started = time.perf_counter()
    try:
        func()
    except Exception as exc:  # a health check reports every failure, whatever its type
        # The endpoint is public: it names the failure; hosts, ports and messages go to the log.
        logger.warning("health check %s failed: %s", name, exc)
        return CheckResult(name, False, round((time.perf_counter() - started) * 1000, 2), backend, type(exc).__name__)
    return CheckResult(name, True, round((time.perf_counter() - started) * 1000, 2), backend)


def check_database() -> CheckResult:
    def run() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()

    return _timed("database", connection.vendor, run)


def check_cache() -> CheckResult:
    def run() -> None:
        key = f"health:{uuid.uuid4().hex}"
        cache.set(key, "1", timeout=10)
        if cache.get(key) != "1":
            raise RuntimeError("value written to the cache could not be read back")
        cache.delete(key)

    backend = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
    return _timed("cache", backend, run)


def check_channel_layer() -> CheckResult:
    layer = get_channel_layer()

    async def roundtrip() -> None:
        channel = await layer.new_channel("health.")
        await layer.send(channel, {"type": "health.ping"})
        import asyncio

        message = await asyncio.wait_for(layer.receive(channel), timeout=2)
        if message.get("type") != "health.ping":
            raise RuntimeError("unexpected message from the channel layer")

    def run() -> None:
        if layer is None:
            raise RuntimeError("no channel layer configured")
        async_to_sync(roundtrip)()

    return _timed("channel_layer", type(layer).__name__ if layer else "none", run)


def check_broker() -> CheckResult:
    # The project's Celery app (huntaze/celery.py makes it the default in every thread), found
    # without core importing the project package.
    def run() -> None:
        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            _ = conn.default_channel  # opens a channel: proves the transport answers

    transport = settings.CELERY_BROKER_URL.split("://", 1)[0]
    return _timed("broker", transport, run)


def run_checks() -> list[CheckResult]:
    return [check_database(), check_cache(), check_channel_layer(), check_broker()]
