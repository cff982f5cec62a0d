"""Housekeeping for notifications, scheduled by beat (CELERY_BEAT_SCHEDULE in settings)."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

READ_NOTIFICATION_RETENTION = timedelta(days=90)


@shared_task(queue="bulk")
def purge_read_notifications() -> int:
    """Delete notifications read more than 90 days ago; unread ones are kept whatever their age."""
    from apps.notifications.models import Notification

    cutoff = timezone.now() - READ_NOTIFICATION_RETENTION
    deleted, _ = Notification.objects.filter(read_at__lt=cutoff).delete()
    return deleted


@shared_task(queue="interactive", autoretry_for=(OSError,), retry_backoff=True, retry_jitter=True, max_retries=5)
def send_notification_email(user_id: int, agency_id: int, title: str, body: str, url: str) -> bool:
    """Email one notification to its member (queued by ``notification_send`` when the member's
    preferences ask for it). Plain text: the title and body may quote fans or AI output."""
    from apps.notifications.emails import notification_email_send

    return notification_email_send(user_id=user_id, agency_id=agency_id, title=title, body=body, url=url)
