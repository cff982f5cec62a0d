"""Run a callback when the process ends cleanly: at interpreter exit (daphne, manage.py) and when
a Celery worker (or one of its pool's processes) stops, so in-process buffers (the AI ledger, the
metrics) are written before the process goes away."""

from __future__ import annotations

import atexit
from collections.abc import Callable
from typing import Any


def at_shutdown(callback: Callable[[], None]) -> None:
    atexit.register(callback)

    def on_celery_shutdown(**_: Any) -> None:
        callback()

    try:
        from celery.signals import worker_process_shutdown, worker_shutdown
    except ImportError:  # pragma: no cover (celery is a runtime dependency)
        return
    worker_process_shutdown.connect(on_celery_shutdown, weak=False)
    worker_shutdown.connect(on_celery_shutdown, weak=False)
