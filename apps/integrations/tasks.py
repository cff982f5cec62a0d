"""Celery tasks of integrations: the token refresh sweep (beat, every 5 minutes) and one refresh."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings


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


@shared_task(name="apps.integrations.tasks.deliver_crm_webhook", ignore_result=True, acks_late=True)
def deliver_crm_webhook(delivery_id: int) -> str:
    """One attempt of a CRM webhook delivery; a retryable failure enqueues the next attempt after
    its backoff. Idempotent: the attempt claims the row with a conditional UPDATE."""
    from apps.integrations.crm import crm_delivery_attempt

    status, retry_in = crm_delivery_attempt(delivery_id=delivery_id)
    if retry_in is not None:
        deliver_crm_webhook.apply_async(args=(delivery_id,), countdown=retry_in)
    return status


@shared_task(name="apps.integrations.tasks.crm_deliveries_sweep", ignore_result=True)
def crm_deliveries_sweep() -> int:
    """Beat, every minute: re-enqueue CRM deliveries whose task was lost or whose worker died."""
    from apps.integrations.crm import crm_deliveries_due, crm_deliveries_release

    due = crm_deliveries_due()
    crm_deliveries_release(delivery_ids=due)
    for delivery_id in due:
        deliver_crm_webhook.delay(delivery_id)
    return len(due)


@shared_task(name="apps.integrations.tasks.publish_due_posts", ignore_result=True)
def publish_due_posts() -> int:
    """Beat, every minute: queue a step for every scheduled post whose time, retry, status poll or
    lease end has come (the countdown queued at scheduling time usually got there first)."""
    from apps.integrations.publishing import posts_due

    due = posts_due()
    for post_id in due:
        publish_post.delay(post_id)
    return len(due)


@shared_task(name="apps.integrations.tasks.publish_post", ignore_result=True, acks_late=True,
             time_limit=settings.INTEGRATIONS_PUBLISH_TIME_LIMIT,
             soft_time_limit=settings.INTEGRATIONS_PUBLISH_TIME_LIMIT - 15)  # fmt: skip
def publish_post(post_id: int) -> str:
    """One step of one post (start, poll or settle). Idempotent: the step claims the post with a
    conditional UPDATE; a duplicate message, or one arriving early, changes nothing."""
    from apps.integrations.publishing import post_publish

    return post_publish(post_id=post_id)


@shared_task(name="apps.integrations.tasks.sync_due_connections", ignore_result=True)
def sync_due_connections() -> int:
    """Beat: queue a sync of every live OnlyFans/Fansly API connection not synced within the interval."""
    from apps.integrations.sync import connections_due_for_sync

    due = connections_due_for_sync()
    for connection_id in due:
        sync_connection.delay(connection_id)
    return len(due)


@shared_task(name="apps.integrations.tasks.sync_connection", ignore_result=True, acks_late=True,
             time_limit=settings.INTEGRATIONS_SYNC_TIME_LIMIT,
             soft_time_limit=settings.INTEGRATIONS_SYNC_TIME_LIMIT - 30)  # fmt: skip
def sync_connection(connection_id: int, trigger: str = "scheduled", started_by_id: int | None = None) -> str:
    """One sync run. Idempotent: a run already alive makes this one a no-op; a killed run is
    resumed from its cursors by the next. After a 429 the next run is scheduled at Retry-After."""
    from apps.integrations.sync import sync_run

    outcome = sync_run(connection_id=connection_id, trigger=trigger, started_by_id=started_by_id)
    if outcome.retry_in is not None:
        sync_connection.apply_async(args=(connection_id, trigger, started_by_id), countdown=outcome.retry_in)
    return outcome.run.status if outcome.run is not None else "skipped"


@shared_task(name="apps.integrations.tasks.process_webhook", ignore_result=True, acks_late=True)
def process_webhook(event_id: int) -> str:
    """Apply one stored third-party API webhook. Idempotent: an event already applied is left alone."""
    from apps.integrations.webhooks import webhook_process

    return webhook_process(event_id=event_id)


@shared_task(name="apps.integrations.tasks.process_webhooks", ignore_result=True, acks_late=True)
def process_webhooks(connection_id: int, since: float) -> int:
    """Apply a connection's webhooks still pending that arrived since ``since`` (the endpoint's
    coalesced drain, webhooks.py). Idempotent: each event is claimed as ``process_webhook`` does."""
    from apps.integrations.webhooks import webhooks_drain

    return webhooks_drain(connection_id=connection_id, since=since)


@shared_task(name="apps.integrations.tasks.webhooks_sweep", ignore_result=True)
def webhooks_sweep() -> int:
    """Beat: re-queue stored webhooks still pending after the grace period (their task was lost)."""
    from apps.integrations.webhooks import webhooks_pending

    pending = webhooks_pending()
    for event_id in pending:
        process_webhook.delay(event_id)
    return len(pending)
