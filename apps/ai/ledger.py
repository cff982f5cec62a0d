"""The AI request ledger, written off the request path.

``record()`` appends a row to an in-memory buffer (microseconds); a background thread writes
the buffer every AI_LEDGER_FLUSH_SECONDS, in one statement without building model instances:
``COPY`` on PostgreSQL, one ``executemany`` insert on SQLite. The ORM's ``bulk_create`` cost about
0.1 ms of CPU per row, taken from the web process's event loop by the GIL (docs/profiles/); this
costs a fraction of that. A batch that breaks a foreign key (a creator deleted meanwhile) or holds
a value the database refuses is written again row by row through the ORM; a row that still
fails is dropped with a log line saying why, so one bad row never holds the others back. The buffer is flushed on clean
shutdown: at interpreter exit (daphne, manage.py) and when a Celery worker process stops, so a
clean stop loses nothing. With AI_LEDGER_FLUSH_SECONDS=0 (the tests) there is no thread and
``flush()`` writes synchronously when called.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import DataError, IntegrityError, close_old_connections, connection, transaction

from apps.core.shutdown import at_shutdown

logger = logging.getLogger(__name__)
MAX_BATCH = 2000


def _insert(model: Any, rows: list[dict[str, Any]]) -> None:
    """Insert ledger rows in one statement: their values as the database takes them, no model
    instances (defaults filled in from the fields, the two types the drivers need help with
    adapted by the backend's own functions)."""
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    columns = [f.attname for f in fields]
    defaults = {f.attname: f.get_default() for f in fields if f.has_default() or f.null}
    ops = connection.ops
    created = columns.index("created_at")
    cost = columns.index("cost_usd")
    cost_field = fields[cost]
    values = []
    for row in rows:
        value = [row[name] if name in row else defaults.get(name) for name in columns]
        value[created] = ops.adapt_datetimefield_value(value[created])
        value[cost] = ops.adapt_decimalfield_value(value[cost], cost_field.max_digits, cost_field.decimal_places)
        values.append(value)
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(name) for name in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with connection.wrap_database_errors, cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for value in values:
                    copy.write_row(value)
        else:
            placeholders = ", ".join(["%s"] * len(columns))
            # Table and column names come from the model, never from input.
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({placeholders})", values)  # noqa: S608


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
                    _insert(AIRequestLog, rows)
            except (IntegrityError, DataError):
                self._write_one_by_one(rows)
        except Exception:
            logger.exception("could not write %d AI ledger rows; keeping them for the next flush", len(rows))
            with self._lock:
                self._buffer = rows + self._buffer
            raise
        return len(rows)

    @staticmethod
    def _write_one_by_one(rows: list[dict[str, Any]]) -> None:
        """A creator, user or agency deleted meanwhile: keep each row, losing only the dead link. A
        row the database refuses for another reason (a value out of range, a NUL) is dropped."""
        from apps.ai.models import AIRequestLog

        for row in rows:
            failure: Exception | None = None
            for attempt in (row, {**row, "creator_id": None, "user_id": None}):
                try:
                    with transaction.atomic():
                        AIRequestLog.objects.create(**attempt)
                except IntegrityError as error:  # perhaps the dead link: try once more without it
                    failure = error
                except DataError as error:  # a value no column takes: the same row would fail again
                    failure = error
                    break
                else:
                    failure = None
                    break
            if failure is not None:
                logger.warning("dropped an AI ledger row (feature %s) the database refused: %s",
                               row.get("feature"), str(failure).strip())  # fmt: skip

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
at_shutdown(ledger.shutdown)
