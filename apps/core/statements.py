"""Cursors that bind their parameters on the PostgreSQL server, for SQL a module writes out.

``statement_cursor`` is for the few statements on every workflow step's and every event's path
(apps/workflows/engine.py, apps/core/events.py, apps/core/outbox.py). On PostgreSQL each one is
prepared on its connection the first time it runs, so the server parses and plans it once rather
than at every step: planning the step's read took 0.30 ms of the server's CPU against 0.14 ms to
execute it (docs/benchmarks.md, "Workflow engine step overhead, fifth pass"). A rollback on the
connection makes psycopg drop them (``DEALLOCATE ALL``); they are prepared again on next use.
DATABASE_PREPARED_STATEMENTS=false turns preparing off (a pooler that cannot keep them).

``server_bound_cursor`` binds on the server without preparing (an ``executemany`` through it sends
one statement text for all its rows: apps/messaging/ingest.py).

Every other query keeps Django's client-side binding and is never prepared: psycopg's
``prepare_threshold`` stays None on the connection (Django's default) except while a prepared
statement is being sent, because a threshold makes psycopg count every statement the connection
runs. Both cursors are Django's wrapper: errors arrive as ``django.db`` errors and the statements
are counted by CaptureQueriesContext and logged under DEBUG (as the SQL with ``$1``-style
placeholders, without their values). On SQLite ``statement_cursor`` is the ordinary cursor.

Written for server-side binding: one statement per ``execute``, ``%s`` placeholders (never inside
an identifier, LIMIT or a literal) and values psycopg adapts to typed parameters (ints, strings,
datetimes, ``Jsonb`` from a JSONField's ``get_db_prep_save``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.db.backends.postgresql.base import TIMESTAMPTZ_OID, Format, ServerBindingCursor
from django.db.backends.postgresql.psycopg_any import register_tzloader


class _PreparingCursor(ServerBindingCursor):
    """A server-binding cursor whose every statement is prepared (see the module docstring)."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        conn = self.connection
        threshold = conn.prepare_threshold
        conn.prepare_threshold = 0  # psycopg prepares nothing while it is None
        try:
            return super().execute(query, params, prepare=True, binary=binary)
        finally:
            conn.prepare_threshold = threshold


def statement_cursor():
    """``connection.cursor()`` for a written-out statement on a hot path: prepared on PostgreSQL."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    return server_bound_cursor(prepared=settings.DATABASE_PREPARED_STATEMENTS)


def server_bound_cursor(*, prepared: bool = False):
    """A cursor on Django's PostgreSQL connection (its transaction, its error wrapping) that binds
    values on the server; ``prepared``: each statement prepared on the connection."""
    # What ``connection.cursor()`` does (``_cursor``, ``create_cursor``), with a server-binding
    # class in place of Django's client-binding default.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        cursor = (_PreparingCursor if prepared else ServerBindingCursor)(connection.connection)
        if connection.timezone != connection.connection.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT).timezone:
            register_tzloader(connection.timezone, cursor)
        return connection._prepare_cursor(cursor)


class ModelColumns:
    """A model's concrete columns in a written-out SELECT, read back into instances as the ORM
    would (the backend's and the fields' converters applied: dates, booleans, JSON, decimals).

    For a read on a hot path whose queryset costs more to build and compile than to run: the
    studio's per-message permission check (apps/accounts/selectors.py ``member_and_creator``) spent
    about 3 ms of CPU compiling two small queries against 0.1 ms running them. The columns follow
    the model, so a new field is read without touching the SQL."""

    def __init__(self, model, alias: str) -> None:
        self.model = model
        self.alias = alias
        self.fields = list(model._meta.concrete_fields)
        self.names = [field.attname for field in self.fields]
        self._pk = self.fields.index(model._meta.pk)
        self.sql = ", ".join(f"{alias}.{connection.ops.quote_name(field.column)}" for field in self.fields)
        self._converters: dict[str, list] = {}

    def __len__(self) -> int:
        return len(self.fields)

    def build(self, values):
        """An instance from this model's slice of a row (``len(self)`` values, in ``self.fields``'
        order); None when the row holds no such object (a LEFT JOIN that matched nothing)."""
        if values[self._pk] is None:
            return None
        converted = [
            _convert(value, converters) if converters else value
            for value, converters in zip(values, self._converters_for_connection(), strict=True)
        ]
        return self.model.from_db(connection.alias, self.names, converted)

    def _converters_for_connection(self) -> list:
        found = self._converters.get(connection.vendor)
        if found is None:
            found = []
            for field in self.fields:
                column = field.get_col(self.alias)
                converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
                found.append([(converter, column) for converter in converters])
            self._converters[connection.vendor] = found
        return found


def _convert(value, converters):
    for converter, column in converters:
        value = converter(value, column, connection)
    return value
