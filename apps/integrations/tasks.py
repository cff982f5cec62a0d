"""Celery tasks of integrations: the token refresh sweep (beat, every 5 minutes) and one refresh."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="apps.integrations.tasks.refresh_expiring_tokens", ignore_result=True)
def refresh_expiring_tokens() -> int:
    """Queue a refresh for every connection whose access token expires within the window."""
    from apps.integrations.services import connections_due_for_refresh

    due = connections_due_for_refresh()
    for connection_id in due:
        refresh_connection.delay(connection_id)
    return len(due)


@shared_task(name="apps.integrations.tasks.refresh_connection", ignore_result=True, acks_late=True)
def refresh_connection(connection_id: int) -> str:
    """Idempotent: a connection refreshed meanwhile is skipped (its refresh token changed); a
    transient failure is left for the next sweep, which comes before the token expires."""
    from apps.integrations.services import connection_refresh

    return connection_refresh(connection_id=connection_id)
