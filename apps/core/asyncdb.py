"""Database work from async code (websocket consumers, streaming views)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from channels.db import DatabaseSyncToAsync


def database_call(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` as a coroutine function that runs in the shared thread pool, with stale database
    connections closed around it (channels' ``database_sync_to_async``).

    Unlike the default (thread-sensitive) mode, calls do not queue behind each other on one
    thread: a hundred websockets starting generations at once run their independent queries side
    by side, each thread on its own persistent connection. Use it only for self-contained work
    (one call, its own transaction), never for code that must share a thread's transaction.
    """
    return DatabaseSyncToAsync(func, thread_sensitive=False)
