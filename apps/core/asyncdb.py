"""Database work from async code (websocket consumers, streaming views)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from channels.db import DatabaseSyncToAsync


def database_call(func: Callable[..., Any], *, executor: ThreadPoolExecutor | None = None) -> Callable[..., Any]:
    """``func`` as a coroutine function that runs in the shared thread pool, with stale database
    connections closed around it (channels' ``database_sync_to_async``).

    Unlike the default (thread-sensitive) mode, calls do not queue behind each other on one
    thread: a hundred websockets starting generations at once run their independent queries side
    by side, each thread on its own persistent connection. Use it only for self-contained work
    (one call, its own transaction), never for code that must share a thread's transaction.

    ``executor``: threads of the caller's own instead of the event loop's default pool, for work a
    person is waiting on that must not queue behind slower work in that pool (a generation's start
    behind other generations' completions). Each of its threads keeps its own connection.
    """
    return DatabaseSyncToAsync(func, thread_sensitive=False, executor=executor)
