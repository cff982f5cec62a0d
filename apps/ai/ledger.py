"""The AI request ledger, written off the request path.

``record()`` appends a row to an in-memory buffer (microseconds); a background thread writes
the buffer with one bulk insert every AI_LEDGER_FLUSH_SECONDS. The buffer is flushed on clean
shutdown: at interpreter exit (daphne, manage.py) and when a Celery worker process stops, so a
clean stop loses nothing. With AI_LEDGER_FLUSH_SECONDS=0 (the tests) there is no thread and
``flush()`` writes synchronously when called.
"""

from __future__ import annotations

import atexit
import logging
import threading
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, close_old_connections, connection, transaction

logger = logging.getLogger(__name__)
MAX_BATCH = 500


class LedgerWriter:
    def __init__(self) -> None:
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, **row: Any) -> None:
        row.setdefault("created_at", datetime.now(UTC))
        with self._lock:
            self._buffer.append(row)
            size = len(self._buffer)
        interval = settings.AI_LEDGER_FLUSH_SECONDS
        if interval > 0:
            self._ensure_thread()
            if size >= MAX_BATCH:
                self._wake.set()

    def pending(self) -> int:
        with self._lock:
            return len(self._buffer)

    def flush(self) -> int:
        """Write everything buffered now; answers how many rows were written."""
        from apps.ai.models import AIRequestLog

        with self._lock:
            rows, self._buffer = self._buffer, []
        if not rows:
            return 0
        try:
            try:
                with transaction.atomic():
                    AIRequestLog.objects.bulk_create([AIRequestLog(**row) for row in rows], batch_size=MAX_BATCH)
            except IntegrityError:
                self._write_one_by_one(rows)
        except Exception:
            logger.exception("could not write %d AI ledger rows; keeping them for the next flush", len(rows))
            with self._lock:
                self._buffer = rows + self._buffer
            raise
        return len(rows)

    @staticmethod
    def _write_one_by_one(rows: list[dict[str, Any]]) -> None:
        """A creator, user or agency deleted meanwhile: keep each row, losing only the dead link."""
        from apps.ai.models import AIRequestLog

        for row in rows:
            for attempt in (row, {**row, "creator_id": None, "user_id": None}):
                try:
                    with transaction.atomic():
                        AIRequestLog.objects.create(**attempt)
                    break
                except IntegrityError:
                    continue
            else:
                logger.warning("dropped an AI ledger row whose agency no longer exists: %s", row.get("feature"))

    def discard(self) -> int:
        """Drop buffered rows without writing them (tests start each case with an empty buffer)."""
        with self._lock:
            dropped, self._buffer = len(self._buffer), []
        return dropped

    async def aflush(self) -> int:
        from asgiref.sync import sync_to_async

        return await sync_to_async(self.flush)()

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="ai-ledger", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        interval = settings.AI_LEDGER_FLUSH_SECONDS
        while not self._stop.is_set():
            self._wake.wait(interval)
            self._wake.clear()
            try:
                close_old_connections()
                self.flush()
            except Exception:  # noqa: S110 (flush() logged it; the rows stay buffered for the next try)
                pass
        connection.close()

    def shutdown(self) -> None:
        """Stop the thread and write what is left (clean shutdown)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            self.flush()
        except Exception:
            logger.exception("AI ledger rows lost at shutdown")


ledger = LedgerWriter()
atexit.register(ledger.shutdown)


def _celery_shutdown(**_: Any) -> None:
    ledger.shutdown()


try:
    from celery.signals import worker_process_shutdown, worker_shutdown

    worker_process_shutdown.connect(_celery_shutdown, weak=False)
    worker_shutdown.connect(_celery_shutdown, weak=False)
except ImportError:  # pragma: no cover (celery is a runtime dependency)
    pass
