"""A cursor for the few statements on every workflow step's and every event's path, which their
modules write out as SQL (apps/workflows/engine.py, apps/core/events.py, apps/core/outbox.py).

On PostgreSQL it binds its parameters on the server, so a statement is parsed and planned once per
connection and then only executed: psycopg prepares it (``prepare_threshold``, set from
DATABASE_PREPARED_STATEMENTS in settings). Planning the step's read cost about 0.15 ms of the
server's CPU per run, as much as its round trip (bench/workflow_steps.py; docs/benchmarks.md,
"Workflow engine step overhead, fifth pass"). Every other query keeps Django's client-side
binding, which is never prepared. The cursor is Django's wrapper around it: errors arrive as
``django.db`` errors and the statements are logged and counted as any other (CaptureQueriesContext,
DEBUG). On SQLite it is the ordinary cursor.

Written for server-side binding: one statement per ``execute``, ``%s`` placeholders (never inside
an identifier, LIMIT or a literal) and values psycopg adapts to typed parameters (ints, strings,
datetimes, ``Jsonb`` from a JSONField's ``get_db_prep_save``).
"""

from __future__ import annotations

from django.db import connection


def statement_cursor():
    """``connection.cursor()`` for a written-out statement: prepared on PostgreSQL (above)."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    from django.db.backends.postgresql.base import TIMESTAMPTZ_OID, Format, ServerBindingCursor
    from django.db.backends.postgresql.psycopg_any import register_tzloader

    # What ``connection.cursor()`` does (``_cursor``, ``create_cursor``), with the server-binding
    # class in place of Django's client-binding default.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        cursor = ServerBindingCursor(connection.connection)
        if connection.timezone != connection.connection.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT).timezone:
            register_tzloader(connection.timezone, cursor)
        return connection._prepare_cursor(cursor)
